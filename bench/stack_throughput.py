"""Training throughput of K networks stacked in one model (tfrobust.train.stacked) against today's trainer training
them one after the other (tfrobust.train.step), side by side in one run, per architecture, batch size and K.

Both sides run the same SGD (momentum 0.9, constant rate) on the same data pipeline kind (each network its own
seeded shuffle), steps_per_call steps per compiled call, after a warm-up call that traces. Today's trainer trains
one network at a time, so its images/s does not depend on K: it is measured once per (architecture, B) and each
stack is compared with it. Rounds interleave (today, K=1, K=2, ..., today, K=1, ...) and the median of --repeats
is reported, so that a change of machine load hits every contestant alike. images/s counts every network's
images: a stack of K at B images a step trains K·B images a step. Writes JSON (--output) and prints a table.

  python bench/stack_throughput.py [--models=mlp:digits,lenet:mnist5k] [--batch_sizes=16,64,256]
      [--stacks=1,2,4,8,16,32,64] [--output=bench/results/stack_throughput.json]
  python bench/stack_throughput.py --quick     # a smoke run: K = 1, 2, 4 at B = 16, one short round (< 1 min)

oneDNN is chosen once for the run (tfrobust.onednn: on, since grouped convolutions need it on CPU; a stack without
it runs each network's convolution separately); set TF_ENABLE_ONEDNN_OPTS=0 to measure the MLP as the study
trains it. The JSON records which it was.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfrobust import onednn  # noqa: E402  pylint: disable=wrong-import-position

ONEDNN = onednn.configure()  # before TensorFlow loads; TF_ENABLE_ONEDNN_OPTS set by the user wins

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfrobust import data as data_lib  # noqa: E402
from tfrobust import io, models  # noqa: E402
from tfrobust.train import stacked_data  # noqa: E402
from tfrobust.train.stacked import StackedTrainer  # noqa: E402
from tfrobust.train.step import Trainer  # noqa: E402
from timing import cpu_model  # noqa: E402  (bench/timing.py)

LR, MOMENTUM = 0.01, 0.9
STEPS_PER_CALL = 16  # the study's default (TrainConfig.steps_per_call)


class Alone:
  """Today's trainer: one network, one step.Trainer call of STEPS_PER_CALL steps at a time."""

  def __init__(self, name, ds, batch_size):
    self.b = batch_size
    self.trainer = Trainer(lambda: models.build_model(name, ds.input_shape, ds.num_classes, seed=0),
                           tf.distribute.get_strategy(), global_batch_size=batch_size, steps_per_call=STEPS_PER_CALL)
    self.it = iter(data_lib.training_stream(ds.x_train, ds.y_train, batch_size, seed=0, epochs=10_000))

  def run(self, calls):
    for _ in range(calls):
      self.trainer.run_steps(self.it, [LR] * STEPS_PER_CALL, STEPS_PER_CALL, momentum=MOMENTUM, weight_decay=0.0,
                             nesterov=False)
    return calls * STEPS_PER_CALL * self.b


class Stack:
  """K networks as one StackedTrainer (each its own seed's data order)."""

  def __init__(self, name, ds, batch_size, k):
    self.b, self.k = batch_size, k
    self.trainer = StackedTrainer(lambda: models.build_model(name, ds.input_shape, ds.num_classes, stack=k),
                                  tf.distribute.get_strategy(), stack=k, global_batch_size=batch_size,
                                  steps_per_call=STEPS_PER_CALL)
    self.it = iter(stacked_data.stacked_stream(ds.x_train, ds.y_train, batch_size, seeds=range(k), epochs=10_000))
    self.lrs = np.full((STEPS_PER_CALL, k), LR, np.float32)

  def run(self, calls):
    for _ in range(calls):
      self.trainer.run_steps(self.it, self.lrs, STEPS_PER_CALL, momentum=[MOMENTUM] * self.k,
                             weight_decay=[0.0] * self.k, nesterov=[False] * self.k, active=[True] * self.k)
    return calls * STEPS_PER_CALL * self.b * self.k


def _rate(runner, calls):
  t0 = time.perf_counter()
  images = runner.run(calls)
  return images / (time.perf_counter() - t0)


def _calls(batch_size, images):
  return max(1, round(images / (STEPS_PER_CALL * batch_size)))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default="mlp:digits,lenet:mnist5k", help="architecture:dataset pairs")
  parser.add_argument("--batch_sizes", default="16,64,256")
  parser.add_argument("--stacks", default="1,2,4,8,16,32,64")
  parser.add_argument("--images", type=int, default=20000,
                      help="images per network per timed round (today's trainer and each network of a stack)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--quick", action="store_true", help="smoke run: K = 1, 2, 4 at B = 16, one short round")
  parser.add_argument("--output", default="bench/results/stack_throughput.json")
  args = parser.parse_args()
  if args.quick:
    args.batch_sizes, args.stacks, args.images, args.repeats = "16", "1,2,4", 16 * STEPS_PER_CALL, 1

  loaded = {}
  rows = []
  for pair in args.models.split(","):
    name, dataset = pair.split(":")
    ds = loaded.setdefault(dataset, data_lib.load_dataset(dataset))
    for b in map(int, args.batch_sizes.split(",")):
      calls = _calls(b, args.images)
      contestants = {"alone": Alone(name, ds, b)}
      contestants.update({k: Stack(name, ds, b, k) for k in map(int, args.stacks.split(","))})
      for runner in contestants.values():
        runner.run(1)  # warm-up: tracing, thread pools
      rates = {key: [] for key in contestants}
      for _ in range(args.repeats):
        for key, runner in contestants.items():
          # A stack trains K networks per call: the same calls give each network the same images as `alone`.
          rates[key].append(_rate(runner, calls))
      alone = statistics.median(rates.pop("alone"))
      for k, r in rates.items():
        row = {"model": name, "dataset": dataset, "batch_size": b, "stack": k, "alone_img_s": alone,
               "stacked_img_s": statistics.median(r), "speedup": statistics.median(r) / alone,
               "images_per_network": calls * STEPS_PER_CALL * b}
        rows.append(row)
        print(json.dumps(row), flush=True)

  out = {"benchmark": "stack_throughput", "sgd": {"lr": LR, "momentum": MOMENTUM},
         "steps_per_call": STEPS_PER_CALL, "repeats": args.repeats, "quick": args.quick, "rows": rows,
         "onednn": ONEDNN, "gpus": len(tf.config.list_physical_devices("GPU")),
         "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": cpu_model()},
         "versions": io.versions()}
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  io.write_json(args.output, out)
  head = ["model", "dataset", "B", "K", "today img/s", "stacked img/s", "stacked/today"]
  print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
  for r in rows:
    cells = [r["model"], r["dataset"], r["batch_size"], r["stack"], f"{r['alone_img_s']:,.0f}",
             f"{r['stacked_img_s']:,.0f}", f"{r['speedup']:.2f}"]
    print("| " + " | ".join(map(str, cells)) + " |")
  print(f"\nimages/s over all networks, median of {args.repeats}; {out['machine']['processor']}, "
        f"{out['machine']['cpus']} CPUs, oneDNN {ONEDNN['onednn']}; JSON: {args.output}")


if __name__ == "__main__":
  main()
