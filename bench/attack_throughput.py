"""Attack cost and strength, side by side in one run (issue 15): on a trained mnist5k LeNet and a trained digits
MLP, over N test images and the study's whole L∞ ε grid,
  pgd_exhaustive   yesterday's PGD-20 × 5 restarts: cleverhans PGD (the last iterate counts), every restart on
                   every example at every ε;
  pgd_ascending    PGD-20 × 5 as the evaluator runs it (attacks.pgd_until_fooled: the restarts side by side, an
                   example done at the first iterate that fools it) with the early stop, ε ascending;
  pgd              the same, ε descending: the evaluator's default (sequences.py);
  apgd_ce          APGD-CE, --apgd_steps iterations, 1 restart, ε descending;
  autoattack       APGD-CE, APGD-T (9 targets), Square (--square_queries), ε descending;
robust accuracy per ε, seconds each (median of --sweep_repeats; compiled steps traced beforehand on 4 examples:
tracing is not timed), and per method the examples it counts robust that pgd_exhaustive fooled.
Also, with --paths, the older comparison of PGD-k paths on untrained weights: cleverhans called eagerly, the
compiled runner (both PGD step backends), and k × one compiled input gradient (the floor).

  .venv/bin/python bench/attack_throughput.py [--nets=mnist5k_lenet,digits_mlp --examples=1000 --paths]
  .venv/bin/python bench/attack_throughput.py --examples=40 --apgd_steps=5 --square_queries=20 --epochs=1  # smoke

Timings mean something only on a quiet machine. Writes JSON to --output (default
bench/results/attack_throughput.json, gitignored) with the CPU model (`lscpu`), and prints Markdown tables.
"""

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfrobust import onednn  # noqa: E402

ONEDNN = onednn.configure()  # before TensorFlow loads; TF_ENABLE_ONEDNN_OPTS set by the user wins

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfrobust import data, io, models  # noqa: E402
from tfrobust.evaluators.robustness import attacks  # noqa: E402
from tfrobust.evaluators.robustness.config import RobustnessConfig  # noqa: E402
from tfrobust.evaluators.robustness.runner import AttackRunner, _connected  # noqa: E402
from tfrobust.evaluators.robustness.sequences import Budget, sweep  # noqa: E402
from timing import cpu_model  # noqa: E402  (bench/timing.py; autoattack_peer.py uses it from here)

# The study flag files' networks and training (flags/mnist5k_study.cfg, flags/digits_study.cfg at B = 64, μ = 0.9,
# seed 0) and their L∞ grids (0 added).
NETS = {
    "mnist5k_lenet": {"dataset": "mnist5k", "model": "lenet", "lr": 0.02, "epochs": 20,
                      "grid": (0.0, 0.02, 0.05, 0.1, 0.2)},
    "digits_mlp": {"dataset": "digits", "model": "mlp", "lr": 0.05, "epochs": 30,
                   "grid": (0.0, 0.02, 0.05, 0.1, 0.2, 0.3)},
}
TRAIN_BATCH, TRAIN_MOMENTUM = 64, 0.9
PGD_STEPS, PGD_RESTARTS = 20, 5  # the study's PGD (flags/*_study.cfg)
METHODS = ("pgd_exhaustive", "pgd_ascending", "pgd", "apgd_ce", "autoattack")
# (attack, ε order) of each swept method: "pgd" is the evaluator's default.
METHOD_SWEEPS = {"pgd_ascending": ("pgd", "ascending"), "pgd": ("pgd", "descending"),
                 "apgd_ce": ("apgd_ce", "descending"), "autoattack": ("autoattack", "descending")}
WARM = Budget(pgd_steps=1, pgd_restarts=1, apgd_steps=1, apgd_restarts=1, square_queries=2)


def trained(name, epochs=None, seed=0, cache_dir=None):
  """(model, dataset) of NETS[name], trained with SGD as the study trains it (Keras fit; --epochs overrides);
  with cache_dir, the weights are kept there and reused (training the LeNet takes minutes)."""
  import keras
  spec = NETS[name]
  ds = data.load_dataset(spec["dataset"])
  model = models.build_model(spec["model"], ds.input_shape, ds.num_classes, seed=seed)
  path = cache_dir and os.path.join(cache_dir, f"{name}_e{epochs or spec['epochs']}_s{seed}.weights.h5")
  if path and os.path.exists(path):
    model.load_weights(path)
    return model, ds
  model.compile(optimizer=keras.optimizers.SGD(spec["lr"], momentum=TRAIN_MOMENTUM),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  model.fit(ds.x_train, ds.y_train, epochs=epochs or spec["epochs"], batch_size=TRAIN_BATCH, verbose=0)
  if path:
    os.makedirs(cache_dir, exist_ok=True)
    model.save_weights(path)
  return model, ds


_EXHAUSTIVE = {}


def exhaustive_pgd(model, x, y, grid, budget, batch_size, step_size):
  """Yesterday's attack, as the evaluator ran it before the early stop: cleverhans PGD (attacks.pgd, the last
  iterate counts) from every restart's start in turn, on every example at every ε, compiled once per model."""
  if id(model) not in _EXHAUSTIVE:
    fn = lambda images: _connected(model(images, training=False), images)  # noqa: E731
    spec = (tf.TensorSpec([None] + list(x.shape[1:]), tf.float32), tf.TensorSpec([None], tf.int64),
            tf.TensorSpec([None], tf.int64)) + (tf.TensorSpec([], tf.float32),) * 2 + (tf.TensorSpec([], tf.int32),) * 2

    @tf.function(input_signature=spec)
    def batch(bx, by, index, eps, step, steps, restarts):
      def body(r, ok):
        start = attacks.random_start(attacks.example_seeds(index, 0, r), bx, norm="inf", eps=eps)
        adv = attacks.pgd(fn, bx, by, start, eps=eps, norm="inf", steps=steps, step_size=step)
        return r + 1, ok & tf.equal(tf.argmax(fn(adv), axis=1, output_type=by.dtype), by)
      return tf.while_loop(lambda r, ok: r < restarts, body, (0, tf.ones_like(by, tf.bool)))[1]
    _EXHAUSTIVE[id(model)] = batch
  batch = _EXHAUSTIVE[id(model)]
  rows = []
  for e in grid:
    ok = [batch(x[i:i + batch_size], y[i:i + batch_size], tf.range(i, min(i + batch_size, len(x)), dtype=tf.int64),
                tf.constant(e, tf.float32), tf.constant(step_size(e, budget.pgd_steps), tf.float32),
                tf.constant(budget.pgd_steps), tf.constant(budget.pgd_restarts)).numpy()
          for i in range(0, len(x), batch_size)]
    rows.append(np.concatenate(ok))
  return np.stack(rows)


def run_method(model, x, y, batch_size, method, grid, budget, classes):
  """(correct [len(grid), n], example-passes per ε) of one METHODS entry on (x, y)."""
  step_size = RobustnessConfig().step_size
  if method == "pgd_exhaustive":
    correct = exhaustive_pgd(model, x, y, grid, budget, batch_size, step_size)
    return correct, [budget.pgd_restarts * len(x)] * len(grid)
  attack, order = METHOD_SWEEPS[method]
  runner = AttackRunner(model, x, y, batch_size=batch_size, seed=0)
  correct, attacked = sweep(runner, attack, "inf", grid, budget, classes=classes, step_size=step_size, order=order)
  return correct, attacked.tolist()


def compare(model, x, y, grid, budget, batch_size, methods=METHODS, repeats=1):
  """{method: {"seconds" (median of `repeats`), "accuracy" per ε, "attacked" per ε, "higher_than_exhaustive" per
  ε}} for every `methods` entry, on the same examples (pgd_exhaustive, the reference, always)."""
  methods = ("pgd_exhaustive",) + tuple(m for m in methods if m != "pgd_exhaustive")
  classes = int(model(x[:1]).shape[-1])
  for method in methods:  # traces every compiled step once; ε, budgets and batch sizes are tensors
    run_method(model, x[:4], y[:4], batch_size, method, grid[:2], WARM, classes)
  out, outcomes = {}, {}
  for method in methods:
    seconds = []
    for _ in range(repeats):
      t0 = time.perf_counter()
      correct, attacked = run_method(model, x, y, batch_size, method, grid, budget, classes)
      seconds.append(time.perf_counter() - t0)
    outcomes[method] = correct
    out[method] = {"seconds": statistics.median(seconds), "accuracy": correct.mean(axis=1).tolist(),
                   "attacked": [int(a) for a in attacked]}
  base = out["pgd_exhaustive"]
  for method, row in out.items():
    row["over_exhaustive_time"] = row["seconds"] / base["seconds"]
    row["largest_rise_over_pgd_points"] = 100 * max(a - b for a, b in zip(row["accuracy"], base["accuracy"]))
    row["largest_drop_below_pgd_points"] = 100 * max(b - a for a, b in zip(row["accuracy"], base["accuracy"]))
    # Examples counted robust that the exhaustive PGD fooled at that ε (the descending order's blind spot).
    row["higher_than_exhaustive"] = (outcomes[method] & ~outcomes["pgd_exhaustive"]).sum(axis=1).tolist()
  return out


def sequences_table(name, grid, rows, n):
  lines = [f"{name}, {n} test images, L∞, ε = {', '.join(f'{e:g}' for e in grid)}:",
           "| method | seconds | x exhaustive | " + " | ".join(f"ε={e:g}" for e in grid) +
           " | examples attacked | robust here, fooled by exhaustive |",
           "|---|---|---|" + "---|" * len(grid) + "---|---|"]
  for method, r in rows.items():
    acc = " | ".join(f"{100 * a:.1f}" for a in r["accuracy"])
    lines.append(f"| {method} | {r['seconds']:.2f} | {r['over_exhaustive_time']:.2f} | {acc} | {sum(r['attacked'])} "
                 f"| {sum(r['higher_than_exhaustive'])} |")
  return lines


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--nets", default=",".join(NETS), help=f"comma-separated, of {', '.join(NETS)}")
  parser.add_argument("--examples", type=int, default=1000, help="first N test images")
  parser.add_argument("--epochs", type=int, default=None, help="override the study's epochs (smoke runs)")
  parser.add_argument("--apgd_steps", type=int, default=RobustnessConfig().apgd_steps)
  parser.add_argument("--square_queries", type=int, default=RobustnessConfig().square_queries)
  parser.add_argument("--batch_size", type=int, default=500)
  parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
  parser.add_argument("--sweep_repeats", type=int, default=1, help="median of N timings per method")
  parser.add_argument("--cache_dir", default=None, help="keep the trained weights here and reuse them")
  parser.add_argument("--paths", action="store_true", help="also the PGD-k paths comparison (untrained weights)")
  parser.add_argument("--steps", type=int, default=20, help="k of the --paths comparison")
  parser.add_argument("--repeats", type=int, default=3, help="median of the --paths comparison")
  parser.add_argument("--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                       "attack_throughput.json"))
  args = parser.parse_args()
  budget = Budget(pgd_steps=PGD_STEPS, pgd_restarts=PGD_RESTARTS, apgd_steps=args.apgd_steps, apgd_restarts=1,
                  square_queries=args.square_queries)
  record = {"examples": args.examples, "budget": dataclasses.asdict(budget),
            "batch_size": args.batch_size, "nets": {}, "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "onednn": ONEDNN, "machine": platform.machine(), "gpus": len(tf.config.list_physical_devices("GPU")),
            "versions": io.versions()}
  lines = []
  for name in args.nets.split(","):
    t0 = time.perf_counter()
    model, ds = trained(name, args.epochs, cache_dir=args.cache_dir)
    x, y = ds.x_test[:args.examples], ds.y_test[:args.examples]
    grid = NETS[name]["grid"]
    rows = compare(model, x, y, grid, budget, args.batch_size, args.methods.split(","), args.sweep_repeats)
    record["nets"][name] = {"grid": list(grid), "train_seconds": time.perf_counter() - t0, "methods": rows,
                            "clean_accuracy": rows["pgd_exhaustive"]["accuracy"][0]}
    lines += sequences_table(name, grid, rows, len(x)) + [""]
  if args.paths:
    record["paths"], path_lines = paths(args)
    lines += path_lines
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  io.write_json(args.output, record)
  print("\n".join(lines))
  print(f"CPU: {record['cpu_model']} ({record['cpu_count']} cores) -> {args.output}")


def timed(fn, repeats):
  t0 = time.perf_counter()
  fn()
  first = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return first, statistics.median(times)


def paths(args):
  """The PGD-k paths on untrained weights over 1,000 mnist5k images: (record, table lines)."""
  from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent
  ds = data.load_mnist5k()
  x, y = ds.x_test[:1000], ds.y_test[:1000]
  eps, k = 0.1, args.steps
  step_size = 2.5 * eps / k
  batches = [(tf.constant(x[i:i + args.batch_size]), tf.constant(y[i:i + args.batch_size]))
             for i in range(0, len(x), args.batch_size)]
  record, lines = {}, [f"PGD-{k} paths (L∞, ε = {eps}), {len(x)} mnist5k images, untrained weights, median of "
                       f"{args.repeats}:", "| model | path | seconds | vs floor |", "|---|---|---|---|"]
  for name in ("mlp", "lenet"):
    model = models.build_model(name, ds.input_shape, ds.num_classes, seed=0)
    rows = {"a_cleverhans_eager": timed(lambda: [projected_gradient_descent(
        lambda t: model(t, training=False), bx, eps, step_size, k, np.inf, loss_fn=attacks.log_odds, clip_min=0.0,
        clip_max=1.0, y=by, rand_init=True, sanity_checks=False).numpy() for bx, by in batches],
        max(1, args.repeats - 1))}
    for backend in ("cleverhans", "fused"):
      runner = AttackRunner(model, x, y, batch_size=args.batch_size, seed=0, backend=backend)
      rows[f"b_compiled_{backend}"] = timed(lambda: runner.run("pgd", "inf", eps=eps, step_size=step_size, steps=k),
                                            args.repeats)

    @tf.function
    def input_gradient(bx, by):
      with tf.GradientTape() as tape:
        tape.watch(bx)
        value = attacks.log_odds(by, model(bx, training=False))
      return tape.gradient(value, bx)
    one = timed(lambda: [input_gradient(bx, by).numpy() for bx, by in batches], args.repeats * 3)
    rows["c_floor"] = (one[0], k * one[1])
    record[name] = {path: {"first_s": f, "median_s": t} for path, (f, t) in rows.items()}
    lines += [f"| {name} | {path} | {t:.3f} | {t / rows['c_floor'][1]:.2f}x |" for path, (_, t) in rows.items()]
  return record, lines


if __name__ == "__main__":
  main()
