"""The paired bootstrap over the shared test set, and the seeds' spread, behind every interval of the report.

Every network of a study is scored on the same test examples, so the noise of the test set is shared: two
networks' accuracies are correlated, and a contrast between them is far less noisy than two independent
binomials, while an effect common to every network (examples hard for all of them) does not shrink with more
seeds. One replicate therefore resamples the test-example indices **once for the whole study** — the same draw
for every network, fixed by the metric's name so that every component and control sees it — and recomputes
every network's accuracy from its per-example outcomes (records.run.Examples), then every estimate; the seeds
enter through their observed spread.

The interval: the estimate ± a half-width built from SE² = s²/S + V_shared: s² the variance of the per-seed effects
between seeds (what resampling seeds estimates, without its (S−1)/S shrinkage; it holds the seed noise and every
network's own test-set noise), V_shared the part of the test-set noise common to the seeds (the covariance across
seeds of the per-seed effects under the shared example resampling), and each part gets its own 95% quantile: the
half-width is √(t²·s²/S + z²·V_shared), t = t_{0.975, S−1}, z = z_{0.975}. Only s² is estimated from S seeds;
V_shared comes from thousands of example draws and is taken as exact, so t on the whole SE would widen the shared
part too (at 3 seeds with mostly shared noise: coverage 1.000 at twice the width). Welch–Satterthwaite df, ν = (S −
1)·(SE²/(s²/S))², were tried and rejected: at 3 seeds an s² that happens to be small inflates ν as well (coverage
0.887 for C1.clean at 2× the margin in the calibration's study). For a family of contrasts, t and z become the 95%
quantiles of the largest |t| and of the largest |z| of the family, simulated from the contrasts' weights with
exchangeable Gaussian networks: each contrast's t with its own s² over its own seeds (a shared multivariate t, one
variance for all, held jointly for only 0.93 at 3 seeds), z with the correlation of the weights, Σ W_i·W_j
normalized (which 3 seeds cannot estimate): a simultaneous interval. A percentile interval cannot cover with 3
seeds: the seed bootstrap of 3 values has 10 distinct draws and never leaves their range. The calibration
(calibration.py, docs/verdicts.md) measures the coverage of this construction, jointly for a family.

A network without per-example outcomes (results written before examples.npz) is redrawn as an independent
Binomial(n, accuracy)/n: the older approximation, which ignores the pairing. A proportion of 0 or 1 gets the
continuity-corrected variance p̃(1 − p̃)/n, p̃ = (x + ½)/(n + 1), so that a floor never yields a zero-width
interval; it is added once (the redraws of a network at 0 or 1 stay there).
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
      p = min(max(m.value, 0.0), 1.0)  # at 0 or 1 the redraws stay put: _floor_variance adds p̃(1 − p̃)/n once
      out[1:, k] = rng.binomial(m.n, p, size=reps) / m.n - p + m.value
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


Z = float(sp_stats.norm.ppf(0.5 + LEVEL / 2))


def half_width(sd_seed, sd_shared, n_seeds, q_seed=None, q_shared=Z):
  """√(q_seed²·s²/S + q_shared²·V_shared), q_seed = t_{0.975, S−1} unless given (see the module docstring)."""
  q_seed = t_quantile(0.5 + LEVEL / 2, n_seeds - 1) if q_seed is None else q_seed
  return np.sqrt(q_seed ** 2 * sd_seed ** 2 / n_seeds + q_shared ** 2 * sd_shared ** 2)


def seeds_needed(sd_seed, sd_shared, margin, simultaneous_q=None):
  """Fewest seeds S with Φ(margin/SE(S) − h(S)/SE(S)) ≥ POWER, SE(S)² = sd_seed²/S + sd_shared², h(S) the
  interval's half-width at S seeds: the power to call an effect of POWER_AT × margin beyond the margin (or, for
  equivalence, wholly outside it). None beyond MAX_SEEDS."""
  se = np.sqrt(sd_seed ** 2 / _SEEDS + sd_shared ** 2)
  if not se.all():
    return 2
  h = half_width(sd_seed, sd_shared, _SEEDS, sp_stats.t.ppf(0.5 + LEVEL / 2, _SEEDS - 1)) * (simultaneous_q or 1.0)
  ok = sp_stats.norm.cdf(((POWER_AT - 1) * margin - h) / se) >= POWER
  return int(_SEEDS[ok.argmax()]) if ok.any() else None


_QUANTILES: Dict[tuple, Tuple[float, float]] = {}  # a study judges the same family shapes many times


def _max_quantiles(weights, key, draws=20000):
  """(q_seed, q_shared): 95% quantiles of max_j |t_j| and max_j |z_j| over a family whose per-seed effects are
  weighted sums of independent N(0, 1) networks (weights [quantity][measures, seeds], zero where a seed is
  absent): t_j the seed-mean over its own seeds divided by its own s/√S, z_j the mean over its exact sd."""
  memo = (key, draws) + tuple((w.shape, w.tobytes()) for w in weights)
  if memo in _QUANTILES:
    return _QUANTILES[memo]
  rng = np.random.default_rng([SEED, 11, zlib.crc32(key.encode())])
  vals = rng.standard_normal((draws, weights[0].shape[0]))
  ts, zs = [], []
  for w in weights:
    present = np.flatnonzero(np.abs(w).sum(axis=0) > 0)
    per_seed = vals @ w[:, present]
    mean = per_seed.mean(axis=1)
    ts.append(mean / (per_seed.std(axis=1, ddof=1) / np.sqrt(len(present))))
    mw = w[:, present].sum(axis=1) / len(present)
    zs.append(vals @ mw / max(float(np.sqrt((mw ** 2).sum())), 1e-300))
  _QUANTILES[memo] = (float(np.quantile(np.abs(np.stack(ts)).max(axis=0), LEVEL)),
                      float(np.quantile(np.abs(np.stack(zs)).max(axis=0), LEVEL)))
  return _QUANTILES[memo]


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
  col = {s: i for i, s in enumerate(seeds)}
  out, weights = [], []
  for terms in family:
    present = sorted(terms)
    w = np.zeros((len(measures), len(seeds)))
    for s in present:
      for m, wt in terms[s]:
        w[index[id(m)], col[s]] += wt
    per_seed = values @ w * scale  # [reps + 1, seeds]
    k = len(present)
    idx = [col[s] for s in present]
    est = float(per_seed[0, idx].mean()) if k else 0.0
    if k < 2:
      out.append(Interval(est, None, None, None, k))
      weights.append(None)
      continue
    weights.append(w)
    var_cc = _floor_variance(terms, present) * scale ** 2
    sd_seed = float(np.std(per_seed[0, idx], ddof=1))
    ex = per_seed[1:, idx]
    # the mean covariance between seeds: (k²·Var(mean) − Σ Var(seed)) / (k(k − 1))
    shared = max(float(k ** 2 * np.var(ex.mean(axis=1), ddof=1) - np.var(ex, axis=0, ddof=1).sum()) / (k * (k - 1)),
                 0.0)
    out.append(Interval(est, None, None, math.sqrt(sd_seed ** 2 / k + shared + var_cc), k, sd_seed=sd_seed,
                        sd_shared=math.sqrt(shared + var_cc)))
  ok = [i for i, iv in enumerate(out) if iv.se is not None]
  q_seed = q_shared = None
  if simultaneous and len(ok) > 1:
    q_seed, q_shared = _max_quantiles([weights[i] for i in ok], key)
  final = []
  for iv in out:
    if iv.se is None:
      final.append(iv)
      continue
    h = float(half_width(iv.sd_seed, iv.sd_shared, iv.n_seeds, q_seed, q_shared or Z))
    need = seeds_needed(iv.sd_seed, iv.sd_shared, margin, h / float(half_width(iv.sd_seed, iv.sd_shared, iv.n_seeds))
                        if q_seed and h > 0 else None)
    final.append(dataclasses.replace(iv, lo=iv.estimate - h, hi=iv.estimate + h, seeds_needed=need))
  return final
