"""Timing shared by the benchmarks: the median of repeated calls after one warm-up call."""

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
