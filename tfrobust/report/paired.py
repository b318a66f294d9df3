"""The paired, two-level bootstrap behind every interval of the report.

Every network of a study is scored on the same test examples, so the noise of the test set is shared: two
networks' accuracies are correlated, and a contrast between them is far less noisy than two independent
binomials, while an effect common to every network (examples hard for all of them) does not shrink with more
seeds. One replicate therefore (1) resamples the seeds with replacement and (2) resamples the test-example
indices **once for the whole study** — the same draw for every network, fixed by the metric's name so that every
component and control sees it — and recomputes every network's accuracy from its per-example outcomes
(records.run.Examples), then every estimate.

The interval: estimate ± q·SE with SE² = s²/S + V_shared: s² the variance of the per-seed effects between seeds
(what resampling seeds estimates, without its (S−1)/S shrinkage; it holds the seed noise and every network's
own test-set noise), V_shared the part of the test-set noise common to the seeds (the covariance across seeds
of the per-seed effects under the shared example resampling), and q = t_{0.975, S−1}; for a family of contrasts,
q is the 95% quantile of the largest |multivariate t| (S − 1 degrees of freedom, the contrasts' correlation from
the two-level replicates): a simultaneous interval. A percentile interval cannot cover with 3 seeds: the seed
bootstrap of 3 values has 10 distinct draws and never leaves their range. The calibration (calibration.py,
docs/verdicts.md) measures the coverage of this construction.

A network without per-example outcomes (results written before examples.npz) is redrawn as an independent
Binomial(n, accuracy)/n: the older approximation, which ignores the pairing. A proportion of 0 or 1 gets the
continuity-corrected variance p̃(1 − p̃)/n, p̃ = (x + ½)/(n + 1), so that a floor never yields a zero-width interval.
"""

import dataclasses
import functools
import math
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import stats as sp_stats

LEVEL = 0.95
REPS = 2000
SEED = 1234  # fixed: the report is byte-for-byte reproducible
POWER, POWER_AT = 0.8, 2.0  # seeds needed for 80% power at 2× the margin
MAX_SEEDS = 200


@dataclasses.dataclass(frozen=True, eq=False)
class Measure:
  """One network's value of one metric: `value` (a fraction, or log2 λ_max), and what its test-set noise is:
  `correct` (bool per test example, shared order across the study), else `n` (independent binomial), else none."""
  value: float
  correct: Optional[np.ndarray] = None
  n: Optional[int] = None
  metric: str = ""


Terms = Dict[int, List[Tuple[Measure, float]]]  # {seed: [(measure, weight)]}: the per-seed effect is Σ w·value


@dataclasses.dataclass(frozen=True)
class Interval:
  estimate: float
  lo: Optional[float]
  hi: Optional[float]
  se: Optional[float]
  n_seeds: int
  seeds_needed: Optional[int] = None  # for POWER at POWER_AT × margin; None: more than MAX_SEEDS
  sd_seed: Optional[float] = None
  sd_shared: Optional[float] = None


def t_quantile(p, df):
  """Student-t quantile from scipy; t_quantile(0.975, 1) = 12.706 (why two seeds decide nothing)."""
  return float(sp_stats.t.ppf(p, df))


@functools.lru_cache(maxsize=8)
def example_counts(n, reps):
  """[reps, n] multiplicities of one shared resample of n test examples per replicate (fixed by n and reps)."""
  rng = np.random.default_rng([SEED, n, reps])
  idx = rng.integers(0, n, size=(reps, n)) + (np.arange(reps) * n)[:, None]
  return np.bincount(idx.ravel(), minlength=reps * n).reshape(reps, n).astype(np.float32)


def _seed_counts(n_seeds, reps):
  rng = np.random.default_rng([SEED, 7, n_seeds, reps])
  pick = rng.integers(0, n_seeds, size=(reps, n_seeds))
  return np.stack([np.bincount(row, minlength=n_seeds) for row in pick]).astype(float)


def cc_variance(p, n):
  """Binomial variance of a proportion, continuity-corrected at 0 and 1 (p̃ = (x + ½)/(n + 1))."""
  x = round(p * n)
  pt = (x + 0.5) / (n + 1) if x in (0, n) else p
  return pt * (1 - pt) / n


def replicate_values(measures: Sequence[Measure], reps, key):
  """[reps + 1, K]: row 0 the observed values, rows 1.. the replicates (see the module docstring)."""
  out = np.empty((reps + 1, len(measures)))
  out[0] = [m.value for m in measures]
  out[1:] = out[0]
  by_n: Dict[int, List[int]] = {}
  rng = np.random.default_rng([SEED, zlib.crc32(key.encode())])
  for k, m in enumerate(measures):
    if m.correct is not None:
      by_n.setdefault(len(m.correct), []).append(k)
    elif m.n:
      x = min(max(round(m.value * m.n), 0), m.n)
      pt = (x + 0.5) / (m.n + 1) if x in (0, m.n) else m.value
      out[1:, k] = rng.binomial(m.n, pt, size=reps) / m.n - pt + m.value
  for n, ks in by_n.items():
    cols = np.stack([measures[k].correct for k in ks], axis=1).astype(np.float32)
    out[1:, ks] = (example_counts(n, reps) @ cols) / n
  return out


def _floor_variance(terms: Terms, seeds):
  """Σ over seeds and networks at 0 or 1 of (w/S)²·p̃(1−p̃)/n: what resampling cannot show at a floor."""
  var = 0.0
  for s in seeds:
    for m, w in terms[s]:
      n = len(m.correct) if m.correct is not None else m.n
      if n and m.metric != "log2_eig" and round(m.value * n) in (0, n):
        var += (w / len(seeds)) ** 2 * cc_variance(m.value, n)
  return var


_SEEDS = np.arange(2, MAX_SEEDS + 1)
_T = sp_stats.t.ppf(0.5 + LEVEL / 2, _SEEDS - 1)


def seeds_needed(sd_seed, sd_shared, margin, simultaneous_q=None):
  """Fewest seeds S with Φ(margin/SE(S) − q_S) ≥ POWER, SE(S)² = sd_seed²/S + sd_shared²: the power to call an
  effect of POWER_AT × margin beyond the margin (or, for equivalence, wholly outside it). None beyond MAX_SEEDS."""
  se = np.sqrt(sd_seed ** 2 / _SEEDS + sd_shared ** 2)
  if not se.all():
    return 2
  ok = sp_stats.norm.cdf((POWER_AT - 1) * margin / se - _T * (simultaneous_q or 1.0)) >= POWER
  return int(_SEEDS[ok.argmax()]) if ok.any() else None


def _max_t_quantile(corr, df, key, draws=20000):
  """95% quantile of max_j |T_j|, T multivariate t (df) with correlation `corr`: the simultaneous multiplier."""
  j = corr.shape[0]
  rng = np.random.default_rng([SEED, 11, zlib.crc32(key.encode())])
  vals, vecs = np.linalg.eigh(corr)
  root = vecs * np.sqrt(np.clip(vals, 0, None))
  z = rng.standard_normal((draws, j)) @ root.T
  chi = np.sqrt(rng.chisquare(df, size=(draws, 1)) / df)
  return float(np.quantile(np.abs(z / chi).max(axis=1), LEVEL))


def intervals(family: Sequence[Terms], *, key, margin, scale=1.0, reps=REPS, simultaneous=False) -> List[Interval]:
  """One Interval per quantity of `family` (per-seed weighted sums of Measures), in the report's unit (× scale).
  simultaneous=True: the intervals hold jointly (see the module docstring)."""
  measures, index = [], {}
  for terms in family:
    for pairs in terms.values():
      for m, _ in pairs:
        if id(m) not in index:
          index[id(m)] = len(measures)
          measures.append(m)
  seeds = sorted({s for terms in family for s in terms})
  if not measures:
    return [Interval(math.nan, None, None, None, 0) for _ in family]
  metric = measures[0].metric
  values = replicate_values(measures, reps, key=metric)
  counts = _seed_counts(len(seeds), reps)
  col = {s: i for i, s in enumerate(seeds)}
  out, boots = [], []
  for terms in family:
    present = sorted(terms)
    w = np.zeros((len(measures), len(seeds)))
    for s in present:
      for m, wt in terms[s]:
        w[index[id(m)], col[s]] += wt
    per_seed = values @ w * scale  # [reps + 1, seeds]
    mask = np.zeros(len(seeds))
    mask[[col[s] for s in present]] = 1.0
    est = float(per_seed[0] @ mask / max(len(present), 1))
    if len(present) < 2:
      out.append(Interval(est, None, None, None, len(present)))
      boots.append(None)
      continue
    cm = counts * mask
    with np.errstate(invalid="ignore", divide="ignore"):
      boot = (per_seed[1:] * cm).sum(axis=1) / cm.sum(axis=1)
    boots.append(boot)
    k = len(present)
    idx = [col[s] for s in present]
    var_cc = _floor_variance(terms, present) * scale ** 2
    sd_seed = float(np.std(per_seed[0, idx], ddof=1))
    ex = per_seed[1:, idx]
    # the mean covariance between seeds: (k²·Var(mean) − Σ Var(seed)) / (k(k − 1))
    shared = max(float(k ** 2 * np.var(ex.mean(axis=1), ddof=1) - np.var(ex, axis=0, ddof=1).sum()) / (k * (k - 1)),
                 0.0)
    out.append(Interval(est, None, None, math.sqrt(sd_seed ** 2 / k + shared + var_cc), k, sd_seed=sd_seed,
                        sd_shared=math.sqrt(shared + var_cc)))
  q_mult = None
  if simultaneous and sum(b is not None for b in boots) > 1:
    ok = [i for i, b in enumerate(boots) if b is not None]
    mat = np.stack([boots[i] for i in ok], axis=1)
    mat = mat[np.isfinite(mat).all(axis=1)]
    corr = np.nan_to_num(np.corrcoef(mat, rowvar=False), nan=0.0)
    np.fill_diagonal(corr, 1.0)
    df = min(out[i].n_seeds for i in ok) - 1
    q_mult = _max_t_quantile(corr, df, key) / t_quantile(0.5 + LEVEL / 2, df)
  final = []
  for iv in out:
    if iv.se is None:
      final.append(iv)
      continue
    q = t_quantile(0.5 + LEVEL / 2, iv.n_seeds - 1) * (q_mult or 1.0)
    need = seeds_needed(iv.sd_seed, iv.sd_shared, margin, q_mult)
    final.append(dataclasses.replace(iv, lo=iv.estimate - q * iv.se, hi=iv.estimate + q * iv.se, seeds_needed=need))
  return final
