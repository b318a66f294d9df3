"""Benchmark of the PGD step: the fused custom op vs the same expression as unfused TF ops vs XLA (jit_compile).

  .venv/bin/python bench/fused_step.py [--output=PATH] [--quick]

Part 1, the step alone: K steps x' = step(x, x0, grad) inside one tf.function (a tf.while_loop, so no eager
dispatch is timed), for batch x image sizes from digits (8x8x1) to CIFAR-10 (32x32x3), L∞ and L2. Reported:
microseconds per step (median over repeats) and the speed-up of each path over unfused TF.
  fused: tfrobust.ops (the compiled op; left out with a note when it is not built)
  tf:    tfrobust.ops.fallback, plain TF ops (what the op replaces)
  xla:   the same expression in a tf.function(jit_compile=True), called once per step
Part 2, end to end: PGD-20 (L∞, ε = 0.1, step 0.01, zero start) on a small model, seconds per attack of one
batch, with the step as op / tf / xla (bench/fused_pgd.py), and cleverhans' loop (attacks.pgd of
tfrobust/evaluators/robustness) as the reference.

Writes JSON to --output (default bench/results/fused_step.json) and prints a table. Times are wall-clock
on whatever machine runs it (the machine, TF version and thread counts go into the JSON); compare rows of one
run only.
"""

import argparse
import json
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfrobust import onednn  # noqa: E402  pylint: disable=wrong-import-position

ONEDNN = onednn.configure()  # before TensorFlow loads; TF_ENABLE_ONEDNN_OPTS set by the user wins

import tensorflow as tf  # pylint: disable=wrong-import-position

import fused_pgd as pgd  # pylint: disable=wrong-import-position (bench/fused_pgd.py)
from tfrobust import models, ops  # pylint: disable=wrong-import-position
from tfrobust.evaluators.robustness import attacks  # pylint: disable=wrong-import-position
from timing import median_seconds  # pylint: disable=wrong-import-position (bench/timing.py)

IMAGES = {"digits": (8, 8, 1), "mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
BATCHES = (128, 1024)
SETTINGS = {"linf": (0.1, 0.01), "l2": (1.0, 0.1)}  # eps, step_size on the [0, 1] scale
TARGET_SECONDS = 0.15  # per timed call; K (steps per call) is chosen to reach it
E2E = (("lenet", "digits", 360), ("lenet", "mnist", 256), ("c1", "cifar10", 128))




def step_loop(step):
  """K steps of `step` in one graph; returns a function of K."""
  @tf.function
  def loop(x, x0, g, eps, step_size, k):
    def body(i, x):
      return i + 1, step(x, x0, g, eps=eps, step_size=step_size)
    return tf.while_loop(lambda i, _: i < k, body, (tf.constant(0), x))[1]
  return loop


def bench_steps(impls, repeats, quick):
  rows = []
  for image_name, image_shape in IMAGES.items():
    for batch in BATCHES[:1] if quick else BATCHES:
      shape = (batch, *image_shape)
      rng = np.random.default_rng(0)
      x0 = tf.constant(rng.uniform(size=shape), tf.float32)
      x = tf.constant(np.clip(x0.numpy() + rng.uniform(-0.05, 0.05, size=shape), 0, 1), tf.float32)
      g = tf.constant(rng.normal(size=shape), tf.float32)
      for norm, (eps, step_size) in SETTINGS.items():
        row = {"image": image_name, "shape": list(shape), "norm": norm, "us_per_step": {}}
        k = None
        for name in impls:
          loop = step_loop(pgd.step_fn(norm, name))
          args = (x, x0, g, tf.constant(eps), tf.constant(step_size))
          if k is None:  # the same K for every path of a row, sized on the first (unfused TF)
            one = median_seconds(lambda: loop(*args, tf.constant(10)).numpy(), 1) / 10
            k = int(np.clip(TARGET_SECONDS / max(one, 1e-7), 10, 2000))
          seconds = median_seconds(lambda: loop(*args, tf.constant(k)).numpy(), repeats)
          row["us_per_step"][name] = 1e6 * seconds / k
        row["steps_per_call"] = k
        rows.append(row)
        print(format_step_row(row), flush=True)
  return rows


def bench_end_to_end(impls, repeats, quick, steps=20):
  rows = []
  eps, step_size = SETTINGS["linf"]
  for model_name, image_name, batch in E2E[:1] if quick else E2E:
    model = models.build_model(model_name, IMAGES[image_name], 10, seed=0)
    model_fn = lambda images, model=model: model(images, training=False)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.uniform(size=(batch, *IMAGES[image_name])), tf.float32)
    y = tf.constant(rng.integers(0, 10, size=batch), tf.int64)
    start = tf.zeros_like(x)
    hparams = dict(eps=tf.constant(eps), norm="inf", steps=tf.constant(steps), step_size=tf.constant(step_size),
                   loss_fn=attacks.log_odds)
    runs = {"cleverhans": tf.function(lambda: attacks.pgd(model_fn, x, y, start, **hparams))}
    for name in impls:
      runs[name] = tf.function(lambda name=name: pgd.pgd(model_fn, x, y, start, step_impl=name, **hparams))
    reference = runs["cleverhans"]().numpy()
    row = {"model": model_name, "image": image_name, "batch": batch, "steps": steps, "ms_per_attack": {},
           "max_abs_diff_vs_cleverhans": {}}
    for name, run in runs.items():
      row["ms_per_attack"][name] = 1e3 * median_seconds(lambda run=run: run().numpy(), repeats)
      row["max_abs_diff_vs_cleverhans"][name] = float(np.abs(run().numpy() - reference).max())
    rows.append(row)
    print(format_e2e_row(row), flush=True)
  return rows


def format_step_row(row):
  t = row["us_per_step"]
  cells = "  ".join(f"{name} {t[name]:9.1f}" for name in t)
  ratios = "  ".join(f"{name} {t['tf'] / t[name]:4.2f}x" for name in t if name != "tf")
  return f"step {row['image']:8s} {'x'.join(map(str, row['shape'])):14s} {row['norm']:4s}  us/step: {cells}  " \
         f"speed-up over tf: {ratios}"


def format_e2e_row(row):
  t = row["ms_per_attack"]
  cells = "  ".join(f"{name} {t[name]:8.1f}" for name in t)
  return f"pgd-{row['steps']} {row['model']:5s} {row['image']:8s} batch {row['batch']:4d}  ms/attack: {cells}"


def markdown(result):
  """The tables docs/ops.md shows."""
  impls = result["impls"]
  lines = ["| image | batch × shape | norm | " + " | ".join(f"{n} µs/step" for n in impls) + " | " +
           " | ".join(f"{n} vs tf" for n in impls if n != "tf") + " |",
           "|---" * (3 + 2 * len(impls) - 1) + "|"]
  for row in result["step"]:
    t = row["us_per_step"]
    lines.append(f"| {row['image']} | {'×'.join(map(str, row['shape']))} | {row['norm']} | " +
                 " | ".join(f"{t[n]:.1f}" for n in impls) + " | " +
                 " | ".join(f"{t['tf'] / t[n]:.2f}×" for n in impls if n != "tf") + " |")
  names = ["cleverhans", *impls]
  lines += ["", "| PGD-20 L∞ | batch | " + " | ".join(f"{n} ms" for n in names) + " | max diff vs cleverhans |",
            "|---" * (3 + len(names)) + "|"]
  for row in result["end_to_end"]:
    t = row["ms_per_attack"]
    diff = max(row["max_abs_diff_vs_cleverhans"].values())
    lines.append(f"| {row['model']} on {row['image']} | {row['batch']} | " +
                 " | ".join(f"{t[n]:.0f}" for n in names) + f" | {diff:.1e} |")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "fused_step.json"), help="JSON result path")
  parser.add_argument("--repeats", type=int, default=5, help="timed calls per cell (median reported)")
  parser.add_argument("--quick", action="store_true", help="batch 128 only, one end-to-end model")
  args = parser.parse_args()
  impls = ["tf", "xla"]
  if ops.implementation() == "compiled":
    impls.insert(0, "fused")
  else:
    print("note: the op library is not built (python -m tfrobust.build_ops); 'fused' would be the fallback, left out", file=sys.stderr)
  print("op:", ops.implementation(), "| TF", tf.__version__, "| cores", os.cpu_count(), flush=True)
  result = {
      "onednn": ONEDNN,
      "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                  "tensorflow": tf.__version__,
                  "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                  "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]},
      "op_implementation": ops.implementation(), "impls": impls, "settings": SETTINGS, "repeats": args.repeats,
  }
  result["step"] = bench_steps(impls, args.repeats, args.quick)
  result["end_to_end"] = bench_end_to_end(impls, args.repeats, args.quick)
  table = markdown(result)
  result["markdown"] = table
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, "w") as f:
    json.dump(result, f, indent=1)
  print("\n" + table + f"\n\nwrote {args.output}")


if __name__ == "__main__":
  main()
