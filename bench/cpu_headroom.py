"""How much of the CPU does one study process leave idle? Each unit of a trial's work (a stack's training steps, one
network's attacks, one network's top Hessian eigenvalue) timed in one process alone, then in two processes doing
the same work at the same moment, side by side in one run.

If one process kept the cores busy with arithmetic, two would take twice as long (a gain of 1.0×); if it left half
the CPU idle, two would take as long as one (2.0×). The gain says about how much a scheme that fills idle cores
(stacking more networks into one step, or running trials side by side) can win over one study process on this
machine; identical work is paired, where two real trials would overlap different phases.

Two processes each build the work and run it once untimed (tracing); then --repeats rounds, each phase starting at
a barrier: the first process alone, the second alone, both at once. Reported: the median of the lone runs, and the
median over rounds of the slower process's time when both ran (interleaved, so that a machine whose speed drifts
hits both alike). oneDNN is chosen per model as studies choose it (tfrobust.onednn). The attack and Hessian
settings are read from the committed study's flag file (flags/digits_study.cfg, flags/mnist5k_study.cfg), as the
sweep reads it, and run on a network trained 3 epochs (an untrained one is fooled at once, which is less work).

  python bench/cpu_headroom.py [--models=mlp:digits,lenet:mnist5k] [--works=train16,train256,attack,hessian]
      [--stack=12] [--output=bench/results/cpu_headroom.json]
"""

import argparse
import json
import multiprocessing as mp
import os
import queue as queue_lib
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

STUDIES = {"digits": "flags/digits_study.cfg", "mnist5k": "flags/mnist5k_study.cfg"}  # whose evaluators are timed
TRAIN_IMAGES = 40_000  # per timed run, over all networks of the stack
BARRIER_S = 600  # a child that waits longer at a barrier gives up: the other has died


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
  tf.keras.utils.set_random_seed(0)  # the same network in every process: an attack's work depends on it
  model = models.build_model(name, ds.input_shape, ds.num_classes, seed=0)
  model.compile(optimizer=tf.keras.optimizers.SGD(0.05),
                loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  model.fit(ds.x_train, ds.y_train, batch_size=64, epochs=3, verbose=0)
  evaluators = _study_evaluators(dataset)
  if work == "attack":
    from tfrobust.evaluators.robustness.evaluate import measure  # pylint: disable=import-outside-toplevel
    config = evaluators["robustness"]
    n = config.eval_examples or len(ds.x_test)
    return lambda: measure(model, ds.x_test[:n], ds.y_test[:n], config, progress=False)
  if work == "hessian":
    from tfrobust.evaluators.hessian.evaluate import top_eigenvalues  # pylint: disable=import-outside-toplevel
    h = evaluators["hessian"]
    return lambda: top_eigenvalues(model, ds, h.top_k, examples=h.examples, subset_seed=h.subset_seed,
                                   method=h.method, max_iter=h.max_iter, tol=h.tol, batch_size=h.batch_size)
  raise ValueError(f"unknown work {work!r}: train<B>, attack or hessian")


def _study_evaluators(dataset):
  """{evaluator name: config} of the committed study on `dataset`, read from its flag file as the sweep reads it."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  from tfrobust.cli import flags as cli_flags  # pylint: disable=import-outside-toplevel
  from tfrobust.cli.flags import study as study_flags  # pylint: disable=import-outside-toplevel
  cli_flags.define_flags()
  study_flags.define_flags()
  flags.FLAGS([sys.argv[0], f"--flagfile={os.path.join(ROOT, STUDIES[dataset])}"])
  return cli_flags.experiment_from_flags(flags.FLAGS).validate().evaluators


PHASES = ("first alone", "second alone", "both")  # one round: each process alone, then both at the same moment


def _child(index, name, dataset, work, stack, repeats, barrier, queue):
  """Process `index` (0 or 1): builds its work, traces it, then runs its part of every round, each phase starting
  at a barrier with the other process (which waits at the next barrier when the phase is not its own)."""
  from tfrobust import onednn  # pylint: disable=import-outside-toplevel
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  onednn.configure(name)  # before TensorFlow loads, as a study would for this model
  fn = _work(name, dataset, work, stack)
  fn()  # tracing
  runs = []
  for _ in range(repeats):
    for phase, mine in zip(PHASES, (index == 0, index == 1, True)):
      barrier.wait(BARRIER_S)
      if mine:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        runs.append({"phase": phase, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0})
  barrier.wait(BARRIER_S)
  queue.put((index, runs))


def measure(name, dataset, work, stack, repeats):
  """Two processes, `repeats` interleaved rounds (each alone, then both): the median wall time of one process
  alone and the cores it kept busy, and the median over rounds of the slower process's time when both ran."""
  ctx = mp.get_context("spawn")
  barrier, queue = ctx.Barrier(2), ctx.Queue()
  children = [ctx.Process(target=_child, args=(i, name, dataset, work, stack, repeats, barrier, queue))
              for i in range(2)]
  for c in children:
    c.start()
  runs = {}
  while len(runs) < len(children):
    try:
      index, out = queue.get(timeout=1)
      runs[index] = out
    except queue_lib.Empty:
      if any(c.exitcode for c in children):  # a child died: the other would wait at the barrier for nothing
        for c in children:
          c.kill()
        sys.exit(f"error: {name}:{dataset} {work} failed in a child process")
  for c in children:
    c.join()
  alone = [r for out in runs.values() for r in out if r["phase"] != "both"]
  both = [[r["wall_s"] for r in out if r["phase"] == "both"] for out in runs.values()]
  return {"one_s": statistics.median(r["wall_s"] for r in alone),
          "one_cores_busy": sum(r["cpu_s"] for r in alone) / sum(r["wall_s"] for r in alone),
          "two_s": statistics.median(max(pair) for pair in zip(*both)),
          "rounds": runs}


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
      m = measure(name, dataset, work, stack, args.repeats)
      row = {"model": name, "dataset": dataset, "work": work, "stack": stack, **m, "gain": 2 * m["one_s"] / m["two_s"]}
      rows.append(row)
      print(f"{name:6s} {dataset:8s} {work:9s} K={stack:2d}: one process {row['one_s']:.2f} s "
            f"({row['one_cores_busy']:.2f} cores busy), two at once {row['two_s']:.2f} s: gain {row['gain']:.2f}x",
            flush=True)
  result = {"rows": rows, "cpu": cpu_model(), "cpus": os.cpu_count(), "repeats": args.repeats}
  print(f"({result['cpu']}, {result['cpus']} CPUs)")
  if args.output:
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
