"""PGD-k over 1,000 images, side by side: (a) cleverhans called eagerly, (b) tfrobust's compiled path (both PGD
step backends), (c) k x the time of one compiled input gradient (the floor). Goal: (b)/(c) <= 1.2, (a)/(b) >= 5.

  .venv/bin/python bench/attack_throughput.py [--models=mlp,lenet --steps=20 --repeats=3]

Images: the 1,000 mnist5k test images (28x28). The weights are untrained (the cost of an attack does not depend on
them). Times are the median of --repeats after one warm-up call (tracing excluded; it is reported apart). Writes JSON
to --output (default bench/results/attack_throughput.json, gitignored) and prints a Markdown table.
"""

import argparse
import os
import platform
import statistics
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfrobust import onednn  # noqa: E402

ONEDNN = onednn.configure()  # before TensorFlow loads; TF_ENABLE_ONEDNN_OPTS set by the user wins

import tensorflow as tf  # noqa: E402
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent  # noqa: E402

from tfrobust import data, io, models  # noqa: E402
from tfrobust.evaluators.robustness import attacks  # noqa: E402
from tfrobust.evaluators.robustness.runner import AttackRunner  # noqa: E402


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


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default="mlp,lenet", help="comma-separated tfrobust.models names")
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--batch_size", type=int, default=500)
  parser.add_argument("--norm", default="inf", choices=["inf", "2"])
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                       "attack_throughput.json"))
  args = parser.parse_args()
  ds = data.load_mnist5k()
  x, y = ds.x_test[:1000], ds.y_test[:1000]
  eps = 0.1 if args.norm == "inf" else 1.0
  k = args.steps
  record = {"images": len(x), "image_shape": list(ds.input_shape), "steps": k, "norm": args.norm, "eps": eps,
            "batch_size": args.batch_size, "repeats": args.repeats, "models": {}}
  lines = [f"PGD-{k} ({args.norm}, ε = {eps}), {len(x)} mnist5k images, batch {args.batch_size}, "
           f"{os.cpu_count()} CPUs, median of {args.repeats}:",
           "| model | path | seconds | images/s | vs floor (c) | first call (incl. trace) |",
           "|---|---|---|---|---|---|"]
  for name in args.models.split(","):
    rows = measure(models.build_model(name, ds.input_shape, ds.num_classes, seed=0), x, y, eps=eps, k=k,
                   norm=args.norm, batch_size=args.batch_size, repeats=args.repeats)
    floor, base = rows["c_floor"][1], rows["b_compiled_cleverhans"][1]
    record["models"][name] = {
        "seconds": {n: t for n, (_, t) in rows.items()}, "first_call_seconds": {n: t for n, (t, _) in rows.items()},
        "ratios": {"b/c": base / floor, "a/b": rows["a_cleverhans_eager"][1] / base,
                   "b_fused/c": rows["b_compiled_fused"][1] / floor}}
    for path, (first, t) in rows.items():
      lines.append(f"| {name} | {path} | {t:.3f} | {len(x) / t:,.0f} | {t / floor:.2f}x | {first:.2f} s |")
    lines.append(f"| {name} | ratios | (b)/(c) = {base / floor:.2f} (goal <= 1.2) | (a)/(b) = "
                 f"{rows['a_cleverhans_eager'][1] / base:.2f} (goal >= 5) | | |")
  from tfrobust import ops
  record.update(fused_op_implementation=ops.implementation(), machine=platform.processor() or platform.machine(),
                cpu_count=os.cpu_count(), gpus=len(tf.config.list_physical_devices("GPU")), versions=io.versions())
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  io.write_json(args.output, record)
  print("\n".join(lines))
  print(f"fused op: {record['fused_op_implementation']} -> {args.output}")


def measure(model, x, y, *, eps, k, norm, batch_size, repeats):
  """{path: (first call s, median s)} for PGD-k over all of x."""
  step_size = 2.5 * eps / k
  batches = [(tf.constant(x[i:i + batch_size]), tf.constant(y[i:i + batch_size]))
             for i in range(0, len(x), batch_size)]
  rows = {}

  def cleverhans_eager():
    for bx, by in batches:
      projected_gradient_descent(lambda t: model(t, training=False), bx, eps, step_size, k, attacks.ORD[norm],
                                 loss_fn=attacks.log_odds, clip_min=0.0, clip_max=1.0, y=by, rand_init=True,
                                 sanity_checks=False).numpy()
  rows["a_cleverhans_eager"] = timed(cleverhans_eager, max(1, repeats - 1))

  for backend in ("cleverhans", "fused"):
    runner = AttackRunner(model, x, y, batch_size=batch_size, seed=0, backend=backend)
    rows[f"b_compiled_{backend}"] = timed(lambda: runner.run("pgd", norm, eps=eps, step_size=step_size, steps=k),
                                          repeats)

  @tf.function
  def input_gradient(bx, by):
    with tf.GradientTape() as tape:
      tape.watch(bx)
      value = attacks.log_odds(by, model(bx, training=False))
    return tape.gradient(value, bx)
  one = timed(lambda: [input_gradient(bx, by).numpy() for bx, by in batches], repeats * 3)
  rows["c_floor"] = (one[0], k * one[1])
  return rows


if __name__ == "__main__":
  main()
