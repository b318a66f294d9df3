"""Training throughput, side by side in one run: LeNet on mnist5k with (a) tfrobust's custom loop, (b) the same
loop with XLA (jit_compile), (c) Keras model.fit, (d) PyTorch eager on CPU (optional `bench` extra).

Same data, same batch, SGD with momentum 0.9 and a constant learning rate everywhere; one warm-up epoch, then
--epochs timed epochs, --repeats rounds interleaved (a, b, c, d, a, b, ...) and the median reported, so that
a change of machine load hits every contestant alike. Writes JSON (--output) and prints a table.

  python bench/train_throughput.py [--batch_sizes=32,256,1024] [--output=bench/results/train_throughput.json]
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

import keras  # noqa: E402

from tfrobust import data as data_lib  # noqa: E402
from tfrobust import distribute, io, models  # noqa: E402
from tfrobust.train.step import Trainer  # noqa: E402

LR, MOMENTUM = 0.01, 0.9


class CustomLoop:
  """tfrobust's Trainer as tfrobust.train.driver drives it (steps_per_call steps per compiled call)."""

  def __init__(self, ds, batch_size, *, jit_compile, steps_per_call=16):
    self.ds, self.b, self.spc = ds, batch_size, steps_per_call
    strategy = distribute.make_strategy()
    self.trainer = Trainer(lambda: models.build_model("lenet", ds.input_shape, 10, seed=0), strategy,
                           global_batch_size=batch_size, steps_per_call=steps_per_call, jit_compile=jit_compile)
    self.steps_per_epoch = len(ds.x_train) // batch_size

  def run(self, epochs):
    stream = data_lib.training_stream(self.ds.x_train, self.ds.y_train, self.b, seed=0, epochs=epochs)
    iterator = iter(stream)
    total = self.steps_per_epoch * epochs
    step = 0
    while step < total:
      num = min(self.spc, total - step)
      self.trainer.run_steps(iterator, [LR] * self.spc, num, momentum=MOMENTUM, weight_decay=0.0, nesterov=False)
      step += num
    return total * self.b


class KerasFit:
  """model.fit with Keras's SGD on the same batches (the same tf.data stream, drop_remainder)."""

  def __init__(self, ds, batch_size):
    self.ds, self.b = ds, batch_size
    self.model = models.build_model("lenet", ds.input_shape, 10, seed=0)
    self.model.compile(optimizer=keras.optimizers.SGD(LR, momentum=MOMENTUM),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    self.steps_per_epoch = len(ds.x_train) // batch_size

  def run(self, epochs):
    stream = data_lib.training_stream(self.ds.x_train, self.ds.y_train, self.b, seed=0, epochs=epochs)
    self.model.fit(stream, epochs=epochs, steps_per_epoch=self.steps_per_epoch, verbose=0)
    return self.steps_per_epoch * epochs * self.b


class TorchProcess:
  """(d) in a child process (bench/torch_lenet.py), which times its own epochs and reports images/s.

  TensorFlow and PyTorch in one process segfault here (their OpenMP/oneDNN runtimes), and separate processes
  are what users compare anyway; rounds still interleave with the TF contestants."""

  def __init__(self, batch_size):
    import subprocess
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_lenet.py")
    self.proc = subprocess.Popen([sys.executable, worker, str(batch_size)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
    self._ask("ready")

  def _ask(self, line):
    self.proc.stdin.write(line + "\n")
    self.proc.stdin.flush()
    reply = self.proc.stdout.readline()
    if not reply:
      raise RuntimeError("the torch worker died")
    return float(reply)

  def rate(self, epochs):
    return self._ask(f"run {epochs}")

  def close(self):
    self.proc.stdin.close()
    self.proc.wait()


def _timed(runner, epochs):
  if isinstance(runner, TorchProcess):
    return runner.rate(epochs)
  t0 = time.perf_counter()
  images = runner.run(epochs)
  return images / (time.perf_counter() - t0)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_sizes", default="32,256,1024")
  parser.add_argument("--images", type=int, default=48000, help="images per timed round (whole epochs)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--output", default="bench/results/train_throughput.json")
  parser.add_argument("--no_torch", action="store_true")
  args = parser.parse_args()

  ds = data_lib.load_mnist5k()
  import importlib.util
  have_torch = importlib.util.find_spec("torch") is not None and not args.no_torch
  if not have_torch and not args.no_torch:
    print("torch not installed (pip install -e .[bench]); skipping (d)", file=sys.stderr)
  rows = []
  for b in map(int, args.batch_sizes.split(",")):
    contestants = {"custom": CustomLoop(ds, b, jit_compile=False), "custom_xla": CustomLoop(ds, b, jit_compile=True),
                   "keras_fit": KerasFit(ds, b)}
    if have_torch:
      contestants["torch"] = TorchProcess(b)
    epochs = max(1, args.images // (len(ds.x_train) // b * b))
    for runner in contestants.values():
      _timed(runner, 1)  # warm-up: tracing, XLA compilation, thread pools
    rates = {name: [] for name in contestants}
    for _ in range(args.repeats):
      for name, runner in contestants.items():
        rates[name].append(_timed(runner, epochs))
    row = {"batch_size": b, "epochs_timed": epochs}
    row.update({f"{name}_img_s": statistics.median(r) for name, r in rates.items()})
    row["custom_over_fit"] = row["custom_img_s"] / row["keras_fit_img_s"]
    row["xla_over_custom"] = row["custom_xla_img_s"] / row["custom_img_s"]
    if have_torch:
      row["custom_over_torch"] = row["custom_img_s"] / row["torch_img_s"]
    rows.append(row)
    if have_torch:
      contestants["torch"].close()
    print(json.dumps(row), flush=True)

  out = {"benchmark": "train_throughput", "model": "lenet", "dataset": "mnist5k (4000 train images)",
         "sgd": {"lr": LR, "momentum": MOMENTUM}, "repeats": args.repeats, "rows": rows,
         "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "versions": io.versions()}
  if have_torch:
    import importlib.metadata
    out["versions"]["torch"] = importlib.metadata.version("torch")
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  io.write_json(args.output, out)
  head = ["B", "custom", "custom+XLA", "model.fit", "torch", "custom/fit", "XLA/custom", "custom/torch"]
  print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
  for r in rows:
    cells = [r["batch_size"], f"{r['custom_img_s']:,.0f}", f"{r['custom_xla_img_s']:,.0f}",
             f"{r['keras_fit_img_s']:,.0f}", f"{r.get('torch_img_s', float('nan')):,.0f}",
             f"{r['custom_over_fit']:.2f}", f"{r['xla_over_custom']:.2f}", f"{r.get('custom_over_torch', float('nan')):.2f}"]
    print("| " + " | ".join(map(str, cells)) + " |")
  print(f"\nimages/s, median of {args.repeats}; JSON: {args.output}")


if __name__ == "__main__":
  main()
