"""Curvature and robustness across trials: the Spearman rank correlation of each curvature measure (λ_max; the
input Hessian's top eigenvalue and the mean input-gradient norm where the runs recorded them) with adversarial
accuracy, over the fitted trials, overall and within each regime, with a 95% bootstrap interval; and the partial
rank correlation given the final training loss (does curvature predict robustness beyond how far training went?).

Interval: trials are resampled with replacement (REPS replicates, a fixed seed: the report is reproducible) and
the statistic recomputed; the interval is the 2.5% and 97.5% percentiles. The partial correlation is that of the
ranks: (r_xy − r_xz·r_yz)/√((1 − r_xz²)(1 − r_yz²)), z the final training loss.
"""

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np
from scipy import stats as sp_stats

REPS = 2000
SEED = 4321
LEVEL = 0.95
MIN_TRIALS = 5  # fewer: no correlation is reported (a rank correlation of 4 points takes 5 values)


@dataclasses.dataclass(frozen=True)
class Correlation:
  n: int
  rho: Optional[float]
  lo: Optional[float]
  hi: Optional[float]


def _ranks(a):
  return sp_stats.rankdata(a, axis=-1)


def _corr(a, b):
  """Pearson correlation along the last axis (NaN where one side is constant)."""
  a = a - a.mean(axis=-1, keepdims=True)
  b = b - b.mean(axis=-1, keepdims=True)
  with np.errstate(invalid="ignore", divide="ignore"):
    return (a * b).sum(axis=-1) / np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))


def _statistic(x, y, z):
  rx, ry = _ranks(x), _ranks(y)
  rxy = _corr(rx, ry)
  if z is None:
    return rxy
  rz = _ranks(z)
  rxz, ryz = _corr(rx, rz), _corr(ry, rz)
  with np.errstate(invalid="ignore", divide="ignore"):
    return (rxy - rxz * ryz) / np.sqrt((1 - rxz ** 2) * (1 - ryz ** 2))


def spearman(x: Sequence[float], y: Sequence[float], z: Optional[Sequence[float]] = None, *, reps=REPS,
             key=0) -> Correlation:
  """Spearman's ρ of (x, y), or the partial one given z, with its bootstrap interval over the trials."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  z = None if z is None else np.asarray(z, float)
  n = len(x)
  if n < MIN_TRIALS:
    return Correlation(n, None, None, None)
  rho = float(_statistic(x, y, z))
  rng = np.random.default_rng([SEED, key, n])
  idx = rng.integers(0, n, size=(reps, n))
  boot = _statistic(x[idx], y[idx], None if z is None else z[idx])
  boot = boot[np.isfinite(boot)]
  if not math.isfinite(rho) or len(boot) < reps // 2:
    return Correlation(n, rho if math.isfinite(rho) else None, None, None)
  lo, hi = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
  return Correlation(n, rho, float(lo), float(hi))


MEASURES = (("λ_max", "top_eig"), ("input-Hessian λ_max", "input_eig"), ("mean input-gradient norm", "grad_norm"))


def table(rows, regimes, *, reps=REPS):
  """[[measure, subset, n, ρ [CI], partial ρ | loss [CI]]] for every measure some trial recorded; rows are dicts
  with regime, adv, train_loss and the MEASURES' keys (None: not recorded)."""
  out = []
  for k, (label, attr) in enumerate(MEASURES):
    for subset in ["all regimes"] + list(regimes):
      pick = [r for r in rows if (subset == "all regimes" or r["regime"] == subset)
              and r.get(attr) is not None and r.get("adv") is not None]
      if not pick and subset == "all regimes":
        break
      x, y = [r[attr] for r in pick], [r["adv"] for r in pick]
      plain = spearman(x, y, reps=reps, key=k)
      with_loss = [r for r in pick if r.get("train_loss") is not None]
      partial = spearman([r[attr] for r in with_loss], [r["adv"] for r in with_loss],
                         [r["train_loss"] for r in with_loss], reps=reps, key=k + 10)
      out.append([label, subset, str(plain.n), fmt(plain), fmt(partial)])
  return out


def fmt(c):
  if c.rho is None:
    return f"— (fewer than {MIN_TRIALS} trials)" if c.n < MIN_TRIALS else "— (a constant)"
  ci = "" if c.lo is None else f" [{c.lo:+.2f}, {c.hi:+.2f}]"
  return f"{c.rho:+.2f}{ci}"


HEAD = ["curvature measure", "trials", "n", "Spearman ρ with adversarial accuracy [95% CI]",
        "partial ρ given final training loss [95% CI]"]
