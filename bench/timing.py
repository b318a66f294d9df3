"""What the benchmarks share: the median of repeated calls after one warm-up call, and the name of the CPU that
every figure is stated beside."""

import platform
import time

import numpy as np


def median_seconds(fn, repeats):
  """Median wall time of `repeats` calls of fn(), after one untimed call (tracing, XLA compilation)."""
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def cpu_model():
  """The CPU's model name, as lscpu prints it (platform.processor() is empty or "x86_64" on Linux)."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()
