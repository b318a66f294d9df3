"""Descriptive intervals for the figures: the mean over seeds of one grid point's accuracy or λ_max with a
Student-t interval (scipy.stats.t). The verdicts' intervals come from paired.py.
"""

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np
from scipy import stats as sp_stats

from tfrobust.report.paired import LEVEL, t_quantile  # noqa: F401 (re-exported)


@dataclasses.dataclass(frozen=True)
class Estimate:
  """Mean of per-seed values with a two-sided t-interval; lo/hi are None when n < 2."""
  mean: float
  lo: Optional[float]
  hi: Optional[float]
  n: int
  sd: Optional[float]
  level: float = LEVEL

  @property
  def has_ci(self):
    return self.lo is not None


def mean_ci(values: Sequence[float], *, level=LEVEL) -> Optional[Estimate]:
  """Mean ± t_{(1+level)/2, n−1}·sd/√n over independent replicates (seeds); None for no values."""
  vals = np.asarray([float(v) for v in values], dtype=float)
  n = len(vals)
  if n == 0:
    return None
  mean = float(vals.mean())
  if n < 2:
    return Estimate(mean, None, None, n, None, level)
  sd = float(vals.std(ddof=1))
  if sd == 0.0:  # scipy returns NaN for a zero scale; the interval is the point
    return Estimate(mean, mean, mean, n, 0.0, level)
  lo, hi = sp_stats.t.interval(level, n - 1, loc=mean, scale=sd / math.sqrt(n))
  return Estimate(mean, float(lo), float(hi), n, sd, level)


def clip(est: Optional[Estimate], lo=0.0, hi=1.0) -> Optional[Estimate]:
  """The same estimate with its interval cut to [lo, hi] (an accuracy level cannot leave [0, 1])."""
  if est is None or not est.has_ci:
    return est
  return dataclasses.replace(est, lo=min(max(est.lo, lo), hi), hi=max(min(est.hi, hi), lo))
