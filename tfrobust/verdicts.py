"""Effect estimates, 95% confidence intervals over seeds and the verdict rules for claims C1-C3 of STUDY.md.

Pure Python (no numpy, scipy or TensorFlow) so that the report runs anywhere in well under a second.
The unit of replication is the seed: every effect is first computed within one seed (a slope over log2 B, a
difference between momenta), then the per-seed values give a mean and a Student-t interval.
Accuracies are fractions in [0, 1]; the report prints them in percentage points.
"""

import dataclasses
import math
from typing import Dict, List, Optional, Sequence

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive"
NOT_MEASURED = "not measured"
DESCRIPTIVE = "descriptive"

# Margins: the smallest effect that counts as "an effect". Accuracy as a fraction (0.01 = 1 point).
ACC_MARGIN = 0.01  # accuracy change per doubling of B
EIG_MARGIN = 0.1  # change of log2(top eigenvalue) per doubling of B (x1.07 per doubling)
MOMENTUM_MARGIN = 0.01  # difference of momentum effects, accuracy fraction
MIN_SEEDS = 2


# ---------------------------------------------------------------------------------------------- statistics

def _betacf(a, b, x):
  """Continued fraction of the incomplete beta function (modified Lentz, Numerical Recipes 6.4)."""
  tiny = 1e-300
  qab, qap, qam = a + b, a + 1.0, a - 1.0
  c, d = 1.0, 1.0 - qab * x / qap
  d = 1.0 / (d if abs(d) > tiny else tiny)
  h = d
  for m in range(1, 300):
    m2 = 2 * m
    aa = m * (b - m) * x / ((qam + m2) * (a + m2))
    d = 1.0 + aa * d
    d = 1.0 / (d if abs(d) > tiny else tiny)
    c = 1.0 + aa / c
    c = c if abs(c) > tiny else tiny
    h *= d * c
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
    d = 1.0 + aa * d
    d = 1.0 / (d if abs(d) > tiny else tiny)
    c = 1.0 + aa / c
    c = c if abs(c) > tiny else tiny
    delta = d * c
    h *= delta
    if abs(delta - 1.0) < 1e-15:
      break
  return h


def betainc(a, b, x):
  """Regularized incomplete beta function I_x(a, b)."""
  if x <= 0.0:
    return 0.0
  if x >= 1.0:
    return 1.0
  log_bt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
  if x < (a + 1.0) / (a + b + 2.0):
    return math.exp(log_bt) * _betacf(a, b, x) / a
  return 1.0 - math.exp(log_bt) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t, df):
  """Student-t cumulative distribution function with `df` degrees of freedom."""
  tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
  return 1.0 - tail if t > 0 else tail


def t_quantile(p, df):
  """Inverse of `t_cdf` by bisection (p in (0, 1)); t_quantile(0.975, 4) = 2.776..."""
  if not 0.0 < p < 1.0 or df <= 0:
    raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
  if p < 0.5:
    return -t_quantile(1.0 - p, df)
  lo, hi = 0.0, 1.0
  while t_cdf(hi, df) < p:
    hi *= 2.0
  for _ in range(200):
    mid = 0.5 * (lo + hi)
    if t_cdf(mid, df) < p:
      lo = mid
    else:
      hi = mid
    if hi - lo < 1e-12 * max(1.0, hi):
      break
  return 0.5 * (lo + hi)


@dataclasses.dataclass(frozen=True)
class Estimate:
  """Mean of per-seed values with a two-sided t-interval; lo/hi are None when n < 2."""
  mean: float
  lo: Optional[float]
  hi: Optional[float]
  n: int
  sd: Optional[float]
  level: float = 0.95

  @property
  def has_ci(self):
    return self.lo is not None


def mean_ci(values: Sequence[float], *, level=0.95) -> Optional[Estimate]:
  """Mean ± t_{(1+level)/2, n-1} · sd/√n over independent replicates (seeds). None for no values."""
  vals = [float(v) for v in values]
  n = len(vals)
  if n == 0:
    return None
  mean = sum(vals) / n
  if n < 2:
    return Estimate(mean, None, None, n, None, level)
  sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
  half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
  return Estimate(mean, mean - half, mean + half, n, sd, level)


def ols_slope(xs: Sequence[float], ys: Sequence[float]) -> Optional[float]:
  """Least-squares slope of y on x; None when x takes fewer than two distinct values."""
  n = len(xs)
  if n < 2 or len(set(xs)) < 2:
    return None
  mx, my = sum(xs) / n, sum(ys) / n
  sxx = sum((x - mx) ** 2 for x in xs)
  return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


# ---------------------------------------------------------------------------------------------- data

@dataclasses.dataclass(frozen=True)
class Point:
  """One finished, non-diverged trial reduced to what the claims need (accuracies as fractions)."""
  regime: str
  batch_size: int
  momentum: float
  seed: int
  clean: float
  adv: Optional[float] = None  # adversarial accuracy at the report's ε (None: not measured)
  top_eig: Optional[float] = None  # largest Hessian eigenvalue of the training loss (None: not measured)


def metric_value(point, metric):
  """clean | adv | log2_eig (log2 of a positive top eigenvalue) | eig; None when not measured."""
  if metric == "log2_eig":
    return math.log2(point.top_eig) if point.top_eig is not None and point.top_eig > 0 else None
  if metric == "eig":
    return point.top_eig
  return getattr(point, metric)


def _cells(points, regime, metric):
  """{seed: {momentum: {B: mean value}}} for one regime (duplicates of a grid point are averaged)."""
  acc: Dict[int, Dict[float, Dict[int, List[float]]]] = {}
  for p in points:
    v = metric_value(p, metric)
    if p.regime != regime or v is None or not math.isfinite(v):
      continue
    acc.setdefault(p.seed, {}).setdefault(p.momentum, {}).setdefault(p.batch_size, []).append(v)
  return {s: {m: {b: sum(v) / len(v) for b, v in bs.items()} for m, bs in ms.items()}
          for s, ms in acc.items()}


def per_seed_slopes(points, regime, metric, momentum=None):
  """Per seed: slope of the metric vs log2 B, averaged over momenta (or for one momentum)."""
  out = []
  for seed, by_mom in sorted(_cells(points, regime, metric).items()):
    slopes = []
    for mom, by_b in sorted(by_mom.items()):
      if momentum is not None and mom != momentum:
        continue
      bs = sorted(by_b)
      s = ols_slope([math.log2(b) for b in bs], [by_b[b] for b in bs])
      if s is not None:
        slopes.append(s)
    if slopes:
      out.append(sum(slopes) / len(slopes))
  return out


def per_seed_spread(points, regime, metric):
  """Per seed: max − min over B of the metric (averaged over momenta at each B)."""
  out = []
  for seed, by_mom in sorted(_cells(points, regime, metric).items()):
    by_b: Dict[int, List[float]] = {}
    for vals in by_mom.values():
      for b, v in vals.items():
        by_b.setdefault(b, []).append(v)
    if len(by_b) >= 2:
      means = [sum(v) / len(v) for v in by_b.values()]
      out.append(max(means) - min(means))
  return out


def per_seed_momentum_effect(points, regime, metric, *, low, high):
  """{seed: mean over B of [metric(μ=high) − metric(μ=low)]}, over the B where both momenta ran."""
  out = {}
  for seed, by_mom in _cells(points, regime, metric).items():
    lo_b, hi_b = by_mom.get(low, {}), by_mom.get(high, {})
    diffs = [hi_b[b] - lo_b[b] for b in sorted(set(lo_b) & set(hi_b))]
    if diffs:
      out[seed] = sum(diffs) / len(diffs)
  return out


def summarize(points, regime, metric, *, level=0.95):
  """{momentum: [(B, Estimate over seeds)]} for the figures."""
  vals: Dict[float, Dict[int, List[float]]] = {}
  for seed, by_mom in _cells(points, regime, metric).items():
    for mom, by_b in by_mom.items():
      for b, v in by_b.items():
        vals.setdefault(mom, {}).setdefault(b, []).append(v)
  return {m: [(b, mean_ci(vals[m][b], level=level)) for b in sorted(vals[m])] for m in sorted(vals)}


# ---------------------------------------------------------------------------------------------- rules

def _pct(x):
  return f"{100 * x:g}"


def rule_text(kind, *, margin, min_seeds=MIN_SEEDS, pct=True):
  """The verdict rule, in words, exactly as `decide` applies it."""
  m = (f"{_pct(margin)} point" + ("" if _pct(margin) == "1" else "s")) if pct else f"{margin:g}"
  few = f"; inconclusive whenever fewer than {min_seeds} seeds give a value"
  if kind == "decrease":
    return (f"supported if the whole 95% CI is below 0; not supported if the CI excludes every drop of "
            f"{m} or more (lower end > −{m}) without lying below 0; otherwise inconclusive" + few)
  if kind == "increase":
    return (f"supported if the whole 95% CI is above 0; not supported if the CI excludes every rise of "
            f"{m} or more (upper end < {m}) without lying above 0; otherwise inconclusive" + few)
  if kind == "equivalent":
    return (f"supported if the whole 95% CI lies inside ±{m} (equivalence margin); not supported if the "
            f"whole CI lies outside ±{m}; otherwise (the CI straddles the margin) inconclusive" + few)
  if kind == "noninferior":
    return (f"supported if the CI's lower end is above −{m} (no drop of {m} or more); not supported if its "
            f"upper end is below −{m}; otherwise inconclusive" + few)
  if kind == "positive":
    return (f"supported if the whole 95% CI is above 0; not supported if its upper end is below {m}; "
            f"otherwise inconclusive" + few)
  if kind == DESCRIPTIVE:
    return ("shown for reading, not judged: the range over B grows with seed noise and the number of batch "
            "sizes, so it has no fixed margin")
  raise ValueError(kind)


def decide(kind, est: Optional[Estimate], *, margin, min_seeds=MIN_SEEDS):
  """Applies the rule `kind` (see `rule_text`) to an estimate."""
  if kind == DESCRIPTIVE:
    return DESCRIPTIVE if est is not None else NOT_MEASURED
  if est is None:
    return NOT_MEASURED
  if est.n < min_seeds or not est.has_ci:
    return INCONCLUSIVE
  lo, hi = est.lo, est.hi
  if kind == "decrease":
    return SUPPORTED if hi < 0 else NOT_SUPPORTED if lo > -margin else INCONCLUSIVE
  if kind in ("increase", "positive"):
    return SUPPORTED if lo > 0 else NOT_SUPPORTED if hi < margin else INCONCLUSIVE
  if kind == "equivalent":
    if -margin < lo and hi < margin:
      return SUPPORTED
    return NOT_SUPPORTED if hi < -margin or lo > margin else INCONCLUSIVE
  if kind == "noninferior":
    return SUPPORTED if lo > -margin else NOT_SUPPORTED if hi < -margin else INCONCLUSIVE
  raise ValueError(kind)


OVERALL_RULE = ("A claim is supported when every component is measured and supported, not supported when any "
                "component is not supported, and inconclusive otherwise, so a claim about robustness is never "
                "supported by clean accuracy alone (descriptive rows do not vote).")


def combine(verdicts):
  """The claim's verdict from its components' verdicts (see OVERALL_RULE)."""
  judged = [v for v in verdicts if v != DESCRIPTIVE]
  if NOT_SUPPORTED in judged:
    return NOT_SUPPORTED
  return SUPPORTED if judged and all(v == SUPPORTED for v in judged) else INCONCLUSIVE


@dataclasses.dataclass(frozen=True)
class Component:
  """One measured effect of a claim, its CI over seeds and its verdict."""
  key: str
  label: str
  regime: str
  unit: str  # "points/doubling", "log2/doubling", "points"
  estimate: Optional[Estimate]
  rule: str
  verdict: str
  note: str = ""


@dataclasses.dataclass(frozen=True)
class Claim:
  key: str
  statement: str
  components: List[Component]
  verdict: str


def _component(key, label, regime, unit, values, kind, margin, *, level, min_seeds, pct=True, note=""):
  est = mean_ci(values, level=level)
  return Component(key, label, regime, unit, est, rule_text(kind, margin=margin, min_seeds=min_seeds, pct=pct),
                   decide(kind, est, margin=margin, min_seeds=min_seeds), note)


def momenta_compared(points):
  """(lowest, highest) momentum present in both claim regimes, or None."""
  sets = [{p.momentum for p in points if p.regime == r} for r in ("fixed_lr", "constant_ratio")]
  common = sorted(sets[0] & sets[1])
  return (common[0], common[-1]) if len(common) >= 2 else None


def c3_values(points, metric, *, low, high):
  """Per-seed momentum effects M_fixed, M_ratio and E = s_f·M_fixed − s_r·M_ratio (signs of the means)."""
  fixed = per_seed_momentum_effect(points, "fixed_lr", metric, low=low, high=high)
  ratio = per_seed_momentum_effect(points, "constant_ratio", metric, low=low, high=high)
  seeds = sorted(set(fixed) & set(ratio))
  if not seeds:
    return list(fixed.values()), list(ratio.values()), []
  sf = 1.0 if sum(fixed[s] for s in seeds) >= 0 else -1.0
  sr = 1.0 if sum(ratio[s] for s in seeds) >= 0 else -1.0
  return list(fixed.values()), list(ratio.values()), [sf * fixed[s] - sr * ratio[s] for s in seeds]


def evaluate(points: Sequence[Point], *, level=0.95, acc_margin=ACC_MARGIN, eig_margin=EIG_MARGIN,
             momentum_margin=MOMENTUM_MARGIN, min_seeds=MIN_SEEDS) -> List[Claim]:
  """Claims C1-C3 from non-diverged points. Accuracy margins are fractions (0.01 = 1 point)."""
  kw = dict(level=level, min_seeds=min_seeds)
  slope = lambda r, m: per_seed_slopes(points, r, m)  # noqa: E731
  c1 = [
      _component("C1.adv", "adversarial accuracy vs log2 B (slope)", "fixed_lr", "points/doubling",
                 slope("fixed_lr", "adv"), "decrease", acc_margin, **kw),
      _component("C1.clean", "clean test accuracy vs log2 B (slope)", "fixed_lr", "points/doubling",
                 slope("fixed_lr", "clean"), "decrease", acc_margin, **kw),
      _component("C1.eig", "log2 top Hessian eigenvalue vs log2 B (slope)", "fixed_lr", "log2/doubling",
                 slope("fixed_lr", "log2_eig"), "increase", eig_margin, pct=False, **kw),
  ]
  c2 = [
      _component("C2.adv", "adversarial accuracy vs log2 B (slope)", "constant_ratio", "points/doubling",
                 slope("constant_ratio", "adv"), "equivalent", acc_margin, **kw),
      _component("C2.clean", "clean test accuracy vs log2 B (slope)", "constant_ratio", "points/doubling",
                 slope("constant_ratio", "clean"), "noninferior", acc_margin, **kw),
      _component("C2.spread", "adversarial accuracy, max − min over B", "constant_ratio", "points",
                 per_seed_spread(points, "constant_ratio", "adv"), DESCRIPTIVE, acc_margin, **kw),
  ]
  c3 = []
  pair = momenta_compared(points)
  for metric, name in (("adv", "adversarial"), ("clean", "clean test")):
    if pair is None:
      c3.append(Component(f"C3.{metric}", f"momentum effect on {name} accuracy", "both", "points", None,
                          rule_text("positive", margin=momentum_margin, min_seeds=min_seeds), NOT_MEASURED,
                          "needs two momenta in both fixed_lr and constant_ratio"))
      continue
    low, high = pair
    fixed, ratio, diff = c3_values(points, metric, low=low, high=high)
    note = (f"{name} accuracy, μ={high:g} minus μ={low:g} averaged over B: fixed_lr "
            f"{_fmt_est(mean_ci(fixed, level=level))}, constant_ratio {_fmt_est(mean_ci(ratio, level=level))}")
    c3.append(_component(f"C3.{metric}",
                         f"size of the momentum effect on {name} accuracy, fixed_lr minus constant_ratio",
                         "both", "points", diff, "positive", momentum_margin, note=note, **kw))
  return [
      Claim("C1", "At a fixed η, larger B gives worse generalization and adversarial robustness and a larger "
                  "top Hessian eigenvalue.", c1, combine(c.verdict for c in c1)),
      Claim("C2", "At a constant η/B, models generalize well and adversarial robustness is almost constant "
                  "in B.", c2, combine(c.verdict for c in c2)),
      Claim("C3", "Momentum changes accuracy/robustness more at a fixed η (varying B) than at a constant η/B.",
            c3, combine(c.verdict for c in c3)),
  ]


def _fmt_est(est, scale=100.0):
  if est is None:
    return "—"
  if not est.has_ci:
    return f"{scale * est.mean:+.2f} (n={est.n}, no CI)"
  return f"{scale * est.mean:+.2f} [{scale * est.lo:+.2f}, {scale * est.hi:+.2f}]"
