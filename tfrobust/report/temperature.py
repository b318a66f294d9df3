"""C4, the temperature claim: do clean accuracy, adversarial accuracy and λ_max depend on (η, B, μ) only through
the SGD temperature T = η/(B(1−μ)) (Jastrzebski et al. 2017; Smith & Le 2018)?

Within each seed, every entering trial's metric is regressed by least squares on a quadratic in log2 T (the model
of "T alone", which lets the metric bend in log T) plus the extra terms log2 B and μ; the extra terms'
coefficients at fixed T are C4's quantities: the log2 B coefficient (the metric's change per doubling of B at
fixed T and μ) and the μ coefficient scaled to the grid's momenta (the change from the lowest to the highest μ at
fixed T and B). The design depends on the hyperparameters only, so each coefficient is a fixed weighted sum of the
seed's measured values (a row of the design's pseudo-inverse): a paired.Terms whose noise paired.py computes
like every other effect's. T is separable from B and μ only where η varies at a fixed B and μ (two regimes, or a
regime that scales η with B): a seed whose design is rank-deficient gives no value.
"""

import math

import numpy as np

LOG_T_DEGREE = 2  # the function of log2 T both models share: a quadratic (a straight line would call curvature in
# log T an effect of B, since log T and log B move together at a fixed η)
RANK_TOL = 1e-9  # relative singular value below which the design is rank-deficient


def temperature(lr_used, batch_size, momentum):
  """T = η/(B(1−μ)): η the learning rate per SGD step after the regime's scaling, B examples per step."""
  return lr_used / (batch_size * (1.0 - momentum))


def log2_temperature(point):
  """log2 T of an Observation, or None without a positive η used."""
  if point.lr_used is None or not point.lr_used > 0:
    return None
  return math.log2(temperature(point.lr_used, point.batch_size, point.momentum))


def design(rows, momenta):
  """[n, k] design of (log2 T, log2 B, μ) rows: 1, log2 T … log2 T^LOG_T_DEGREE, log2 B, and (μ − μ_lo)/(μ_hi −
  μ_lo) when the grid has two momenta or more; the extra terms are the last one or two columns."""
  lo, hi = min(momenta), max(momenta)
  cols = [[t ** d for d in range(LOG_T_DEGREE + 1)] + [b] + ([(m - lo) / (hi - lo)] if hi > lo else [])
          for t, b, m in rows]
  return np.asarray(cols, float)


def extra_weights(x):
  """Rows of the least-squares pseudo-inverse that give the extra terms' coefficients, or None when the design
  cannot separate them from log T (rank-deficient, or no more trials than coefficients)."""
  n, k = x.shape
  if n <= k:
    return None
  s = np.linalg.svd(x, compute_uv=False)
  if s[-1] <= RANK_TOL * s[0]:
    return None
  extra = k - (LOG_T_DEGREE + 1)
  return np.linalg.pinv(x)[-extra:]


def extra_terms(items):
  """([(name, paired.Terms)], note) from entering (Observation, Measure) items: the log2 B term per doubling of B
  and the μ term from the lowest to the highest μ, both at fixed T, each a per-seed weighted sum."""
  momenta = sorted({p.momentum for p, m in items})
  by_seed = {}
  for p, m in items:
    t = log2_temperature(p)
    if t is not None:
      by_seed.setdefault(p.seed, []).append((t, math.log2(p.batch_size), p.momentum, m))
  names = ["log2 B at fixed T (per doubling of B)"]
  if len(momenta) > 1:
    names.append(f"μ {momenta[0]:g} → {momenta[-1]:g} at fixed T and B")
  terms = [dict() for _ in names]
  skipped = []
  for seed, rows in sorted(by_seed.items()):
    w = extra_weights(design([r[:3] for r in rows], momenta))
    if w is None:
      skipped.append(seed)
      continue
    for j in range(len(names)):
      terms[j][seed] = [(r[3], float(wt)) for r, wt in zip(rows, w[j])]
  note = "" if not skipped else (f"seed(s) {', '.join(map(str, skipped))}: T cannot be told from B and μ (η does "
                                 "not vary at a fixed B and μ: one regime that keeps η fixed?)")
  return list(zip(names, terms)), note
