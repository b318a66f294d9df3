"""How much of the CPU does one study process leave idle? Each unit of a trial's work (a stack's training steps, one
network's attacks, one network's top Hessian eigenvalue) timed in one process alone, then in two processes doing
the same work at the same moment, side by side in one run.

If one process kept the cores busy with arithmetic, two would take twice as long (a gain of 1.0×); if it left half
the CPU idle, two would take as long as one (2.0×). The gain bounds what any scheme that fills idle cores (stacking
more networks into one step, or running trials side by side) can win over today's process on this machine.

Each process builds its work, runs it once untimed (tracing), waits at a barrier with the others, then times
--repeats runs; the figure is the slowest process's median. oneDNN is chosen per model as studies choose it
(tfrobust.onednn). The attack and Hessian settings are the committed study's (flags/digits_study.cfg,
flags/mnist5k_study.cfg), on a network trained 3 epochs (an untrained one is fooled at once, which is less work).

  python bench/cpu_headroom.py [--models=mlp:digits,lenet:mnist5k] [--works=train16,train256,attack,hessian]
      [--stack=12] [--output=bench/results/cpu_headroom.json]
"""

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

# The studies' attack and Hessian settings (their flag files), per dataset.
ATTACKS = {"digits": dict(eps=(0.02, 0.05, 0.1, 0.2, 0.3), eval_examples=None),
           "mnist5k": dict(eps=(0.02, 0.05, 0.1, 0.2), eval_examples=500)}
HESSIAN_EXAMPLES = {"digits": None, "mnist5k": 1000}
TRAIN_IMAGES = 40_000  # per timed run, over all networks of the stack


def _work(name, dataset, work, stack):
  """A no-argument callable doing one unit of `work` (built here, in the child, after TensorFlow loads)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import stack_throughput  # pylint: disable=import-outside-toplevel  (bench/stack_throughput.py)
  from tfrobust import data as data_lib, models  # pylint: disable=import-outside-toplevel

  ds = data_lib.load_dataset(dataset)
  if work.startswith("train"):
    batch = int(work[len("train"):])
    runner = stack_throughput.Stack(name, ds, batch, stack) if stack > 1 else stack_throughput.Alone(name, ds, batch)
    calls = max(1, round(TRAIN_IMAGES / (stack_throughput.STEPS_PER_CALL * batch * stack)))
    return lambda: runner.run(calls)
  model = models.build_model(name, ds.input_shape, ds.num_classes, seed=0)
  model.compile(optimizer=tf.keras.optimizers.SGD(0.05),
                loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  model.fit(ds.x_train, ds.y_train, batch_size=64, epochs=3, verbose=0)
  if work == "attack":
    from tfrobust.evaluators.robustness.config import RobustnessConfig  # pylint: disable=import-outside-toplevel
    from tfrobust.evaluators.robustness.evaluate import measure  # pylint: disable=import-outside-toplevel
    settings = ATTACKS[dataset]
    config = RobustnessConfig(attacks=("fgsm", "pgd"), norms=("inf",), eps=settings["eps"], pgd_steps=20,
                              pgd_restarts=5, dataset=dataset)
    n = settings["eval_examples"] or len(ds.x_test)
    return lambda: measure(model, ds.x_test[:n], ds.y_test[:n], config, progress=False)
  if work == "hessian":
    from tfrobust.evaluators.hessian.evaluate import top_eigenvalues  # pylint: disable=import-outside-toplevel
    return lambda: top_eigenvalues(model, ds, 1, examples=HESSIAN_EXAMPLES[dataset])
  raise ValueError(f"unknown work {work!r}: train<B>, attack or hessian")


def _child(name, dataset, work, stack, repeats, barrier, queue):
  from tfrobust import onednn  # pylint: disable=import-outside-toplevel
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  onednn.configure(name)  # before TensorFlow loads, as a study would for this model
  fn = _work(name, dataset, work, stack)
  fn()  # tracing
  barrier.wait()
  times, cpu = [], []
  for _ in range(repeats):
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    times.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
  queue.put({"wall_s": statistics.median(times), "cores_busy": sum(cpu) / sum(times)})


def measure_processes(name, dataset, work, stack, repeats, processes):
  """[one dict per process]: the median wall time of the work and the cores its process kept busy."""
  ctx = mp.get_context("spawn")
  barrier, queue = ctx.Barrier(processes), ctx.Queue()
  children = [ctx.Process(target=_child, args=(name, dataset, work, stack, repeats, barrier, queue))
              for _ in range(processes)]
  for c in children:
    c.start()
  out = [queue.get() for _ in children]
  for c in children:
    c.join()
    if c.exitcode:
      sys.exit(f"error: {name}:{dataset} {work} failed in a child process (exit {c.exitcode})")
  return out


def main():
  from timing import cpu_model  # pylint: disable=import-outside-toplevel  (bench/timing.py)
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
  parser.add_argument("--models", default="mlp:digits,lenet:mnist5k", help="architecture:dataset pairs")
  parser.add_argument("--works", default="train16,train256,attack,hessian",
                      help="train<B> (a stack's training steps at batch size B), attack, hessian")
  parser.add_argument("--stack", type=int, default=12, help="networks per stack for the train works (1: alone)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--output", default=None)
  args = parser.parse_args()
  rows = []
  for pair in args.models.split(","):
    name, dataset = pair.split(":")
    for work in args.works.split(","):
      stack = args.stack if work.startswith("train") else 1
      one = measure_processes(name, dataset, work, stack, args.repeats, 1)[0]
      two = measure_processes(name, dataset, work, stack, args.repeats, 2)
      slowest = max(r["wall_s"] for r in two)
      row = {"model": name, "dataset": dataset, "work": work, "stack": stack, "one_s": one["wall_s"],
             "one_cores_busy": one["cores_busy"], "two_s": slowest,
             "two_cores_busy": sum(r["cores_busy"] for r in two), "gain": 2 * one["wall_s"] / slowest}
      rows.append(row)
      print(f"{name:6s} {dataset:8s} {work:9s} K={stack:2d}: one process {row['one_s']:.2f} s "
            f"({row['one_cores_busy']:.2f} cores busy), two at once {slowest:.2f} s: gain {row['gain']:.2f}x",
            flush=True)
  result = {"rows": rows, "cpu": cpu_model(), "cpus": os.cpu_count(), "repeats": args.repeats}
  print(f"({result['cpu']}, {result['cpus']} CPUs)")
  if args.output:
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
