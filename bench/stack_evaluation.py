"""Would the evaluators gain from stacking as training does? The work of one attack step (the input gradient of the
cross-entropy on an attack batch) and of one Lanczos iteration (a Hessian-vector product of the training loss by
double backprop on a Hessian batch), for K networks stacked in one model (models.build_model(..., stack=K): each
network its own copy of the images) against the same work done by one network K times, side by side in one run.

Both sides are compiled tf.functions on the same shapes as the study's evaluators (attack batch 500, Hessian batch
512 by default), after a warm-up call that traces; rounds interleave (alone, K=2, K=4, ...) and the median of
--repeats is reported as images a second over all networks. A speed-up near 1 means the evaluators' batches
already keep the CPU busy with arithmetic, and stacking them would not pay on this machine.

  python bench/stack_evaluation.py [--models=lenet:mnist5k,mlp:digits] [--stacks=1,2,4,12]
      [--output=bench/results/stack_evaluation.json]
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfrobust import onednn  # noqa: E402  pylint: disable=wrong-import-position

ONEDNN = onednn.configure()  # before TensorFlow loads

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfrobust import data as data_lib  # noqa: E402
from tfrobust import io, models  # noqa: E402
from tfrobust.losses import cross_entropy  # noqa: E402
from timing import cpu_model  # noqa: E402  (bench/timing.py)


def _losses(model, k, x, y):
  """Each network's summed cross-entropy on its copy of x: [K]."""
  logits = tf.reshape(model(x, training=False), [tf.shape(x)[0], k, -1])
  labels = tf.tile(y[:, None], [1, k])
  return tf.reduce_sum(cross_entropy(labels, logits), axis=0)  # the loss the Hessian module differentiates


def work(model, k, kind):
  """A compiled function doing one unit of `kind` work for all K networks of `model`."""
  weights = model.trainable_variables

  @tf.function(reduce_retracing=True)
  def input_gradient(x, y):
    with tf.GradientTape() as tape:
      tape.watch(x)
      loss = tf.reduce_sum(_losses(model, k, x, y))
    return tape.gradient(loss, x)

  @tf.function(reduce_retracing=True)
  def hvp(x, y, vs):
    with tf.GradientTape() as outer:
      with tf.GradientTape() as inner:
        loss = tf.reduce_sum(_losses(model, k, x, y))
      grads = inner.gradient(loss, weights)
      dot = tf.add_n([tf.reduce_sum(g * v) for g, v in zip(grads, vs)])
    return outer.gradient(dot, weights)

  return input_gradient if kind == "attack" else hvp


def contestant(name, ds, k, kind, batch):
  """(call, images per call): K networks stacked (k > 1) or one network (k = 1)."""
  model = models.build_model(name, ds.input_shape, ds.num_classes, stack=k)
  x = tf.constant(np.tile(ds.x_test[:batch] if kind == "attack" else ds.x_train[:batch], [1, 1, 1, k]))
  y = tf.constant((ds.y_test if kind == "attack" else ds.y_train)[:batch])
  fn = work(model, k, kind)
  if kind == "attack":
    return (lambda: fn(x, y)), batch * k
  vs = [tf.random.normal(w.shape) for w in model.trainable_variables]
  return (lambda: fn(x, y, vs)), batch * k


def _rate(call, images, calls):
  t0 = time.perf_counter()
  for _ in range(calls):
    out = call()
  tf.nest.map_structure(lambda t: t.numpy(), out)
  return images * calls / (time.perf_counter() - t0)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default="lenet:mnist5k,mlp:digits", help="architecture:dataset pairs")
  parser.add_argument("--stacks", default="1,2,4,12")
  parser.add_argument("--attack_batch", type=int, default=500)
  parser.add_argument("--hessian_batch", type=int, default=512)
  parser.add_argument("--images", type=int, default=20000, help="images per network per timed round")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--output", default="bench/results/stack_evaluation.json")
  args = parser.parse_args()
  rows = []
  for pair in args.models.split(","):
    name, dataset = pair.split(":")
    ds = data_lib.load_dataset(dataset)
    for kind, batch in (("attack", args.attack_batch), ("hvp", args.hessian_batch)):
      batch = min(batch, len(ds.x_test) if kind == "attack" else len(ds.x_train))
      stacks = [int(k) for k in args.stacks.split(",")]
      contestants = {k: contestant(name, ds, k, kind, batch) for k in stacks}
      for call, _ in contestants.values():
        call()  # warm-up: tracing
      calls = max(1, round(args.images / batch))
      rates = {k: [] for k in stacks}
      for _ in range(args.repeats):
        for k, (call, images) in contestants.items():
          rates[k].append(_rate(call, images, calls))
      alone = statistics.median(rates[1])
      for k in stacks:
        rate = statistics.median(rates[k])
        rows.append({"model": name, "dataset": dataset, "work": kind, "batch": batch, "stack": k,
                     "images_per_s": rate, "speedup": rate / alone, "rounds": rates[k]})
        print(f"{name:6s} {kind:6s} batch {batch:4d} K={k:3d}: {rate:10.0f} img/s ({rate / alone:.2f}x one network)",
              flush=True)
  result = {"rows": rows, "onednn": ONEDNN, "cpu": cpu_model(),
            "cpu_count": os.cpu_count(), "tensorflow": tf.__version__}
  if args.output:
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    io.write_json(args.output, result)
  print(json.dumps({k: v for k, v in result.items() if k != "rows"}))


if __name__ == "__main__":
  main()
