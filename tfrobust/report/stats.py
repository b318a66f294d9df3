"""Intervals for per-seed effects: a Student-t interval over seeds (scipy.stats.t) and a parametric bootstrap
that also resamples the test set, so that a verdict can account for both sources of noise.

An effect here is linear in the measured values: within seed s it is Σ_i w_i·y_i over that seed's points
(a least-squares slope, a difference of means). That lets the bootstrap redraw every accuracy y_i as
Binomial(n_i, y_i)/n_i for all replicates at once (numpy, vectorised): no per-replicate Python loop.
"""

import dataclasses
import math
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import stats as sp_stats

LEVEL = 0.95
BOOTSTRAP_REPS = 4000
BOOTSTRAP_SEED = 1234  # fixed, with the component's name mixed in: the report is byte-for-byte reproducible

Term = Tuple[float, float, Optional[int]]  # (weight, value, n examples or None: not a binomial proportion)


def t_quantile(p, df):
  """Student-t quantile from scipy; t_quantile(0.975, 1) = 12.706 (why two seeds decide nothing)."""
  return float(sp_stats.t.ppf(p, df))


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


def ols_weights(xs: Sequence[float]) -> Optional[List[float]]:
  """w with slope = Σ w_i·y_i for least squares of y on x, i.e. w_i = (x_i − x̄)/Σ(x − x̄)²; None when x takes
  fewer than two distinct values."""
  if len(set(xs)) < 2:
    return None
  mx = sum(xs) / len(xs)
  sxx = sum((x - mx) ** 2 for x in xs)
  return [(x - mx) / sxx for x in xs]


def ols_slope(xs: Sequence[float], ys: Sequence[float]) -> Optional[float]:
  w = ols_weights(xs)
  return None if w is None else sum(a * b for a, b in zip(w, ys))


def seed_values(per_seed: Dict[int, List[Term]]) -> List[float]:
  """The effect within each seed, Σ w·y, in seed order."""
  return [sum(w * y for w, y, _ in per_seed[s]) for s in sorted(per_seed)]


def bootstrap_interval(per_seed: Dict[int, List[Term]], *, key: str, level=LEVEL,
                       reps=BOOTSTRAP_REPS) -> Optional[Tuple[float, float]]:
  """Percentile interval of the mean effect when both the seeds and the test examples are resampled.

  Each replicate draws n seeds with replacement and, for every proportion y_i measured on n_i examples, a
  fresh Binomial(n_i, y_i)/n_i (terms with n None, e.g. log2 eigenvalues, are kept as measured). Treating the
  evaluations as independent samples overstates the noise of differences between models scored on the same
  test set, so this interval errs on the wide side. None for fewer than 2 seeds.
  """
  seeds = sorted(per_seed)
  if len(seeds) < 2:
    return None
  rng = np.random.default_rng([BOOTSTRAP_SEED, zlib.crc32(key.encode())])
  effects = np.empty((len(seeds), reps))
  for i, s in enumerate(seeds):
    w = np.array([t[0] for t in per_seed[s]], dtype=float)
    y = np.array([t[1] for t in per_seed[s]], dtype=float)
    n = np.array([t[2] or 0 for t in per_seed[s]], dtype=np.int64)
    draws = np.broadcast_to(y, (reps, len(y))).copy()
    binom = n > 0
    if binom.any():
      p = np.clip(y[binom], 0.0, 1.0)
      draws[:, binom] = rng.binomial(n[binom], p, size=(reps, int(binom.sum()))) / n[binom]
    effects[i] = draws @ w
  pick = rng.integers(0, len(seeds), size=(reps, len(seeds)))
  means = effects[pick, np.arange(reps)[:, None]].mean(axis=1)
  alpha = (1.0 - level) / 2.0
  lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
  return float(lo), float(hi)


def hull(*intervals) -> Optional[Tuple[float, float]]:
  """The smallest interval holding every given one (None entries ignored): the union the verdicts use."""
  have = [iv for iv in intervals if iv is not None]
  if not have:
    return None
  return min(iv[0] for iv in have), max(iv[1] for iv in have)
