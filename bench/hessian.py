"""Benchmark of the Hessian evaluator (tfrobust/evaluators/hessian): one gradient, one HVP per autodiff mode, the
top eigenvalue to 1e-3 by power iteration and by Lanczos; LeNet on 1,000 mnist5k training images and the MLP on
all 1,437 digits images.

  .venv/bin/python bench/hessian.py

Each model is first trained briefly (3 epochs of SGD, batch 128, lr 0.05) so that the spectrum is that of a
model that learned something. Times are medians of repeated calls after a warm-up call (the trace); the
first call of a fresh model (trace) and of a second model of the same architecture (shared trace) are timed
too. Accuracy: each solver's result against a reference from Lanczos run to tol=1e-7.
Writes --output (default bench/results/hessian.json) and prints a table. Goal: HVP/gradient <= 2.0.
Reference (docs/study.md): PyHessian, LeNet on 1,000 MNIST-shaped inputs, 2 CPU cores: 1.43 s per HVP, 24.9 s to the
top eigenvalue.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfrobust import onednn  # noqa: E402  pylint: disable=wrong-import-position

ONEDNN = onednn.configure()  # before TensorFlow loads; TF_ENABLE_ONEDNN_OPTS set by the user wins

import keras  # pylint: disable=wrong-import-position
import tensorflow as tf  # pylint: disable=wrong-import-position

from tfrobust import data, models  # pylint: disable=wrong-import-position
from tfrobust.evaluators.hessian import analyzer  # pylint: disable=wrong-import-position
from tfrobust.evaluators.hessian import config as hessian_config  # pylint: disable=wrong-import-position
from tfrobust.evaluators.hessian import evaluate as hessian_eval  # pylint: disable=wrong-import-position
from tfrobust.evaluators.hessian import hvp as hvp_lib  # pylint: disable=wrong-import-position
from timing import median_seconds  # pylint: disable=wrong-import-position (bench/timing.py)

PYHESSIAN = {"model": "lenet", "examples": 1000, "hvp_seconds": 1.43, "top_eigenvalue_seconds": 24.9}
TOL, MAX_ITER, BATCH = 1e-3, 100, hessian_config.HessianConfig().batch_size




def trained_model(model_name, ds, seed):
  model = models.build_model(model_name, ds.input_shape, ds.num_classes, seed=seed)
  model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
  hist = model.fit(ds.x_train, ds.y_train, batch_size=128, epochs=3, verbose=0, shuffle=True)
  return model, float(hist.history["accuracy"][-1])


def first_call_seconds(model, x, y):
  start = time.perf_counter()
  a = analyzer.HessianAnalyzer(model, x, y, batch_size=BATCH)
  a.hvp(np.ones(a.num_params))
  return time.perf_counter() - start


def bench(name, model_name, dataset_name, examples, repeats):
  ds = data.load_dataset(dataset_name)
  model, accuracy = trained_model(model_name, ds, seed=0)
  second, _ = trained_model(model_name, ds, seed=1)
  idx = hessian_eval.subset_indices(len(ds.x_train), examples, 0)
  x, y = ds.x_train[idx], ds.y_train[idx]
  row = {"name": name, "model": model_name, "dataset": dataset_name, "examples": len(idx),
         "batch_size": BATCH, "train_accuracy": accuracy}
  hvp_lib.clear_cache()
  row["first_hvp_s"] = first_call_seconds(model, x, y)  # Builds the data tensors and traces.
  row["second_model_first_hvp_s"] = first_call_seconds(second, x, y)  # Shares the trace.
  analyzers = {mode: analyzer.HessianAnalyzer(model, x, y, batch_size=BATCH, hvp_mode=mode)
               for mode in analyzer.HVP_MODES}
  a = analyzers[analyzer.DEFAULT_HVP_MODE]
  row["num_params"] = a.num_params
  row["gradient_s"] = median_seconds(a.loss_and_gradient, repeats)
  v = np.random.default_rng(0).standard_normal(a.num_params)
  for mode, an in analyzers.items():
    row[f"hvp_{mode}_s"] = median_seconds(lambda an=an: an.hvp(v), repeats)
    row[f"hvp_{mode}_over_gradient"] = row[f"hvp_{mode}_s"] / row["gradient_s"]
  reference = a.top_eigenvalues(1, method="lanczos", max_iter=300, tol=1e-7, seed=1)
  row["reference_eigenvalue"] = reference.eigenvalues[0]
  row["reference_converged"] = reference.converged
  for method in hessian_config.METHODS:
    start = time.perf_counter()
    r = a.top_eigenvalues(1, method=method, max_iter=MAX_ITER, tol=TOL, seed=0)
    row[f"{method}_s"] = time.perf_counter() - start
    row[f"{method}_products"] = r.products
    row[f"{method}_eigenvalue"] = r.eigenvalues[0]
    row[f"{method}_converged"] = r.converged
    row[f"{method}_relative_error"] = abs(r.eigenvalues[0] - reference.eigenvalues[0]) / abs(
        reference.eigenvalues[0])
  row["tracing_count"] = a.tracing_count
  return row


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "hessian.json"), help="JSON file to write")
  parser.add_argument("--repeats", type=int, default=10, help="timed calls per median")
  args = parser.parse_args()
  rows = [bench("LeNet / mnist5k", "lenet", "mnist5k", 1000, args.repeats),
          bench("MLP / digits", "mlp", "digits", 1437, args.repeats)]
  result = {"onednn": ONEDNN, "tol": TOL, "max_iter": MAX_ITER, "repeats": args.repeats, "pyhessian_reference": PYHESSIAN,
            "tensorflow": tf.__version__, "keras": keras.__version__, "cpus": os.cpu_count(),
            "machine": platform.processor() or platform.machine(), "rows": rows}
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, "w") as f:
    json.dump(result, f, indent=1)
  print("| model / data | params | N | gradient s | HVP reverse s (×grad) | HVP forward s (×grad) | "
        "first HVP s (trace) / 2nd model | power: s, HVPs, rel. err | Lanczos: s, HVPs, rel. err | λ₁ |")
  print("|" + "---|" * 10)

  def solver(r, m):
    return (f"{r[m + '_s']:.2f}, {r[m + '_products']}, {r[m + '_relative_error']:.1e}"
            f"{'' if r[m + '_converged'] else ' (not converged)'}")
  for r in rows:
    print(f"| {r['name']} | {r['num_params']:,} | {r['examples']} | {r['gradient_s']:.4f} | "
          f"{r['hvp_reverse_s']:.4f} ({r['hvp_reverse_over_gradient']:.2f}) | "
          f"{r['hvp_forward_s']:.4f} ({r['hvp_forward_over_gradient']:.2f}) | "
          f"{r['first_hvp_s']:.2f} / {r['second_model_first_hvp_s']:.2f} | {solver(r, 'power')} | "
          f"{solver(r, 'lanczos')} | {r['reference_eigenvalue']:.4f} |")
  p = PYHESSIAN
  print(f"| PyHessian (docs/study.md) LeNet | | {p['examples']} | | {p['hvp_seconds']} | | | "
        f"{p['top_eigenvalue_seconds']} | | |")
  print(f"wrote {args.output}")


if __name__ == "__main__":
  main()
