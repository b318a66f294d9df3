"""The intervals behind every verdict: the seeds' spread, each network's own test-set noise, and the test-set noise
the seeds share.

Every network of a study is scored on the same test examples, so part of the test set's noise is shared: two
networks' accuracies are correlated, and a contrast between them is far less noisy than two independent
binomials, while an effect common to every network (examples hard for all of them) does not shrink with more
seeds. A per-seed effect e_s = Σ_k w_k·acc_k is a mean over the test examples of d_si = Σ_k w_k·c_ki (c_ki: network
k right on example i, records.run.Examples), so its test-set noise is known exactly from the per-example outcomes:
resampling the examples (the bootstrap, taken to infinitely many replicates) gives Cov(e_s, e_s') = Cov_i(d_si,
d_s'i)/n. Its diagonal, V_s, is seed s's own test-set noise (for a paired contrast, the McNemar variance of its
discordant examples); the mean off-diagonal, V_shared, is the part the seeds share.

The interval: the estimate ± √(max(t²·s², z²·V_own)/S + z²·V_shared), with s² the variance of the per-seed effects
between seeds (the seed noise plus each network's unshared test-set noise), V_own = mean_s V_s − V_shared (≥ 0; a
V_shared estimated negative counts as 0 here and in the V_own it leaves), t = t_{0.975, S−1} and z = z_{0.975}. The
seed part never falls below what the networks' own test-set sampling contributes: with three seeds, discrete
counts can make s² = 0 by coincidence (each seed +1 example of 360, from different examples), and the interval
keeps the noise of those discordant examples. Only s² is estimated from S seeds; V_own and V_shared come from the
n examples and are taken as known, so they get z: t on the shared part too covered 1.000 at twice the width at 3
seeds. Welch–Satterthwaite df, ν = (S − 1)·(SE²/(s²/S))², were rejected: at 3 seeds an s² that happens to be small
inflates ν as well (coverage 0.887 in a simulated study). For a family of contrasts, t and z become the 95%
quantiles of the largest |t| and of the largest |z| of the family, simulated from the contrasts' weights with
exchangeable Gaussian networks: each contrast's t with its own s² over its own seeds, z with the correlation of the
weights, Σ W_i·W_j normalized: a simultaneous interval. A percentile bootstrap over 3 seeds cannot cover: it has 10
distinct draws and never leaves their range. The calibration (calibration.py, docs/verdicts.md) measures the
coverage of this construction, jointly for a family, on simulated studies and on a real study's resampled outcomes.

A network without per-example outcomes (results written before examples.npz) counts as an independent
Binomial(n, accuracy)/n: its variance p(1 − p)/n enters its seed's own part and nothing is shared. A proportion of
0 or 1 gets the continuity-corrected variance p̃(1 − p̃)/n, p̃ = (x + ½)/(n + 1), so that a floor never yields a
zero-width interval.
"""

import dataclasses
import functools
import math
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import stats as sp_stats

LEVEL = 0.95
SEED = 1234  # fixed: the family quantiles, and so the report, are byte-for-byte reproducible


@dataclasses.dataclass(frozen=True, eq=False)
class Measure:
  """One network's value of one metric: `value` (a fraction, or log2 λ_max), and what its test-set noise is:
  `correct` (per test example, shared order across the study: bool, or a per-example score such as an ε-free area),
  else `n` (independent binomial), else none."""
  value: float
  correct: Optional[np.ndarray] = None
  n: Optional[int] = None
  metric: str = ""


Terms = Dict[int, List[Tuple[Measure, float]]]  # {seed: [(measure, weight)]}: the per-seed effect is Σ w·value


@dataclasses.dataclass(frozen=True)
class Interval:
  """An estimate over seeds, its 95% interval and what the interval is made of (report units): sd_seed the observed
  sd of the per-seed effects, sd_own the unshared test-set sd of one seed's effect (the seed part's floor),
  sd_shared the shared test-set sd; q_seed, q_shared the multipliers used (t and z, or a family's); n_examples the
  test examples behind it (the shared and own parts scale as 1/n_examples)."""
  estimate: float
  lo: Optional[float]
  hi: Optional[float]
  se: Optional[float]
  n_seeds: int
  sd_seed: Optional[float] = None
  sd_own: Optional[float] = None
  sd_shared: Optional[float] = None
  q_seed: Optional[float] = None
  q_shared: Optional[float] = None
  n_examples: Optional[int] = None


@functools.lru_cache(maxsize=4096)
def t_quantile(p, df):
  """Student-t quantile from scipy; t_quantile(0.975, 1) = 12.706 (why two seeds decide nothing)."""
  return float(sp_stats.t.ppf(p, df))


Z = float(sp_stats.norm.ppf(0.5 + LEVEL / 2))


def cc_variance(p, n):
  """Binomial variance of a proportion, continuity-corrected at 0 and 1 (p̃ = (x + ½)/(n + 1))."""
  x = round(p * n)
  pt = (x + 0.5) / (n + 1) if x in (0, n) else p
  return pt * (1 - pt) / n


def _at_floor(m):
  n = len(m.correct) if m.correct is not None else m.n
  return bool(n) and m.metric != "log2_eig" and round(m.value * n) in (0, n)


def example_covariance(terms: Terms, seeds, scale=1.0):
  """[S, S] covariance of the per-seed effects under resampling of the test examples (module docstring): the
  exact moments of the paired example bootstrap, plus each binomial or floored network's variance on its seed's
  diagonal. Networks with per-example outcomes are paired only with networks scored on as many examples."""
  cov = np.zeros((len(seeds), len(seeds)))
  by_n: Dict[int, np.ndarray] = {}
  for j, s in enumerate(seeds):
    for m, w in terms[s]:
      if m.correct is not None:
        n = len(m.correct)
        d = by_n.setdefault(n, np.zeros((n, len(seeds))))
        d[:, j] += w * np.asarray(m.correct, dtype=np.float64)
      if (m.correct is None and m.n) or _at_floor(m):
        n = len(m.correct) if m.correct is not None else m.n
        p = min(max(m.value, 0.0), 1.0)
        cov[j, j] += w ** 2 * (cc_variance(p, n) if _at_floor(m) else p * (1 - p) / n)
  for n, d in by_n.items():
    centred = d - d.mean(axis=0)
    cov += centred.T @ centred / n / n
  return cov * scale ** 2


def split_variance(cov):
  """(V_own, V_shared) from a seeds' test-set covariance: the mean diagonal less the (non-negative) mean
  off-diagonal, and that off-diagonal mean itself (may be negative; the interval uses it clipped at 0)."""
  k = len(cov)
  shared = float((cov.sum() - np.trace(cov)) / (k * (k - 1))) if k > 1 else 0.0
  return max(float(np.trace(cov)) / k - max(shared, 0.0), 0.0), shared


def half_width(sd_seed, sd_own, sd_shared, n_seeds, q_seed=None, q_shared=Z):
  """√(max(q_seed²·s², q_shared²·V_own)/S + q_shared²·V_shared), q_seed = t_{0.975, S−1} unless given."""
  q_seed = t_quantile(0.5 + LEVEL / 2, n_seeds - 1) if q_seed is None else q_seed
  return np.sqrt(np.maximum(q_seed ** 2 * sd_seed ** 2, q_shared ** 2 * sd_own ** 2) / n_seeds
                 + q_shared ** 2 * sd_shared ** 2)


_QUANTILES: Dict[tuple, Tuple[float, float]] = {}  # a study judges the same family shapes many times


def z_quantile(level):
  """The two-sided normal quantile of a confidence level (1.96 at 0.95)."""
  return float(sp_stats.norm.ppf(0.5 + level / 2))


def _max_quantiles(weights, key, draws=20000, level=LEVEL):
  """(q_seed, q_shared): `level` quantiles of max_j |t_j| and max_j |z_j| over a family whose per-seed effects are
  weighted sums of independent N(0, 1) networks (weights [quantity][measures, seeds], zero where a seed is
  absent): t_j the seed-mean over its own seeds divided by its own s/√S, z_j the mean over its exact sd."""
  memo = (key, draws, level) + tuple((w.shape, w.tobytes()) for w in weights)
  if memo in _QUANTILES:
    return _QUANTILES[memo]
  if (1 - level) * draws < 100:  # beyond what the draws resolve (an early sequential look): Šidák from 95%
    q_seed95, q_shared95 = _max_quantiles(weights, key, draws, LEVEL)
    k_seed = math.log(LEVEL) / math.log(1 - 2 * sp_stats.t.sf(q_seed95, _seed_df(weights)))
    k_shared = math.log(LEVEL) / math.log(1 - 2 * sp_stats.norm.sf(q_shared95))
    _QUANTILES[memo] = (t_quantile(0.5 + level ** (1 / k_seed) / 2, _seed_df(weights)),
                        float(sp_stats.norm.ppf(0.5 + level ** (1 / k_shared) / 2)))
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
  _QUANTILES[memo] = (float(np.quantile(np.abs(np.stack(ts)).max(axis=0), level)),
                      float(np.quantile(np.abs(np.stack(zs)).max(axis=0), level)))
  return _QUANTILES[memo]


def _seed_df(weights):
  """The fewest seeds of the family's contrasts, less one: the t df of its seed part."""
  return int(min((np.abs(w).sum(axis=0) > 0).sum() for w in weights)) - 1


def family_t(q_shared, n_seeds):
  """The seed part's family multiplier at n_seeds seeds (a number or an array) for a family whose z multiplier is
  q_shared: Šidák's t over the effective number of independent contrasts that q_shared implies (1 − α_eff =
  2Φ(q_shared) − 1; a single contrast gives t_{0.975, S−1}). Used to recompute a family's quantiles at seed counts
  not run (advice.py)."""
  alpha_eff = 2 * sp_stats.norm.sf(q_shared)
  return sp_stats.t.ppf(1 - alpha_eff / 2, np.maximum(np.asarray(n_seeds) - 1, 1))


def _examples(terms: Terms):
  ns = [len(m.correct) if m.correct is not None else m.n for pairs in terms.values() for m, _ in pairs]
  ns = [n for n in ns if n]
  return int(np.median(ns)) if ns else None


def intervals(family: Sequence[Terms], *, key, scale=1.0, simultaneous=False, level=LEVEL) -> List[Interval]:
  """One Interval per quantity of `family` (per-seed weighted sums of Measures), in the report's unit (× scale),
  at confidence `level` (a group-sequential look uses its own). simultaneous=True: the intervals hold jointly (see
  the module docstring)."""
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
  col = {s: i for i, s in enumerate(seeds)}
  out, weights = [], []
  for terms in family:
    present = sorted(terms)
    per_seed = np.array([sum(w * m.value for m, w in terms[s]) for s in present]) * scale
    k = len(present)
    est = float(per_seed.mean()) if k else 0.0
    if k < 2:
      out.append(Interval(est, None, None, None, k))
      weights.append(None)
      continue
    w = np.zeros((len(measures), len(seeds)))
    for s in present:
      for m, wt in terms[s]:
        w[index[id(m)], col[s]] += wt
    weights.append(w)
    own, shared = split_variance(example_covariance(terms, present, scale))
    sd_seed = float(np.std(per_seed, ddof=1))
    out.append(Interval(est, None, None, math.sqrt(max(sd_seed ** 2, own) / k + max(shared, 0.0)), k,
                        sd_seed=sd_seed, sd_own=math.sqrt(own), sd_shared=math.sqrt(max(shared, 0.0)),
                        n_examples=_examples(terms)))
  ok = [i for i, iv in enumerate(out) if iv.se is not None]
  q_seed = q_shared = None
  if simultaneous and len(ok) > 1:
    q_seed, q_shared = _max_quantiles([weights[i] for i in ok], key, level=level)
  final = []
  for iv in out:
    if iv.se is None:
      final.append(iv)
      continue
    qs = t_quantile(0.5 + level / 2, iv.n_seeds - 1) if q_seed is None else q_seed
    qz = z_quantile(level) if q_shared is None else q_shared
    h = float(half_width(iv.sd_seed, iv.sd_own, iv.sd_shared, iv.n_seeds, qs, qz))
    final.append(dataclasses.replace(iv, lo=iv.estimate - h, hi=iv.estimate + h, q_seed=qs, q_shared=qz))
  return final
