"""Claims C1-C3 as the report tests them, in one place: what each claim states, the components it is judged on
(metric, regimes, rule, margin: COMPONENTS), and the rules themselves — `decide` applies a rule and `rule_text`
states it, from the same thresholds, so the report and docs/verdicts.md print exactly what decided. The claims
come from the study's definition, docs/study.md.

A rule sees an effect's point estimate, the interval it is judged on (the union of the t-interval over seeds
and the bootstrap over seeds and test examples, see stats.py), the number of seeds and a practical
margin: the smallest effect that matters. Estimates, intervals and margins share one unit (the report's:
accuracy points per doubling of B, log2 λ_max per doubling of B, accuracy points for C3).
"""

import dataclasses
import math

from tfrobust.errors import UsageError
from tfrobust.report import effects, stats

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
NEGLIGIBLE = "negligible"  # the CI lies inside ±margin: no effect that matters; counts as not supported
INCONCLUSIVE = "inconclusive"
NOT_MEASURED = "not measured"
NOT_APPLICABLE = "not applicable"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, NEGLIGIBLE, INCONCLUSIVE, NOT_MEASURED, NOT_APPLICABLE)

# Margins in the report's units. Accuracy: 1 percentage point per doubling of B (4 points over B = 16…256).
ACC_MARGIN = 1.0  # accuracy points per doubling of B (C1.clean, C1.adv, C2.clean, C2.adv)
EIG_MARGIN = 0.1  # log2 λ_max per doubling of B (λ ∝ B^0.1: ×1.07 per doubling) (C1.eig)
MOMENTUM_MARGIN = 1.0  # accuracy points, difference of momentum effects (C3)
MIN_SEEDS = 3  # with 2 seeds t_{0.975, 1} = 12.7: the interval is ±9·sd, no verdict is possible

DECREASE, INCREASE, POSITIVE, EQUIVALENT = "decrease", "increase", "positive", "equivalent"
_DIRECTION = {DECREASE: -1.0, INCREASE: 1.0, POSITIVE: 1.0}


def check_margin(margin, name="margin"):
  """A margin must be a finite number > 0 (a rule with margin 0 cannot call anything negligible)."""
  if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin <= 0:
    raise UsageError(f"{name}={margin!r}: must be a finite number > 0")
  return float(margin)


def _fmt(x):
  return f"{x:+.3g}"


def too_few_seeds_text(min_seeds=MIN_SEEDS):
  t2 = stats.t_quantile(0.975, 1)
  tmin = stats.t_quantile(0.975, min_seeds - 1)
  return (f"at least {min_seeds} seeds are needed for any verdict (95% t-interval half-width t·sd/√n: "
          f"t_{{0.975,1}} = {t2:.1f} with 2 seeds, t_{{0.975,{min_seeds - 1}}} = {tmin:.2f} with {min_seeds}); "
          "fewer give \"inconclusive (too few seeds)\"")


def rule_text(kind, *, margin, unit, min_seeds=MIN_SEEDS):
  """The rule `decide` applies, in words."""
  check_margin(margin)
  m = f"{margin:g} {unit.replace('points', 'point', 1) if margin == 1 else unit}"
  few = f"; inconclusive when fewer than {min_seeds} seeds give a value"
  if kind in _DIRECTION:
    word = {DECREASE: "drop", INCREASE: "rise", POSITIVE: "positive effect"}[kind]
    side = "below 0" if kind == DECREASE else "above 0"
    wrong = "above 0" if kind == DECREASE else "below 0"
    sign = "−" if kind == DECREASE else "+"
    return (f"{word}: supported when the whole CI lies {side} and the estimate is at least a {word} of "
            f"{m} ({sign}{m}); negligible (counts as not supported) when the whole CI lies inside ±{m}; "
            f"not supported when the whole CI lies {wrong}; otherwise inconclusive" + few)
  if kind == EQUIVALENT:
    return (f"equivalence (TOST-style, with the 95% CI, stricter than TOST's 90%): supported when the whole CI "
            f"lies inside ±{m}; not supported when the whole CI lies outside ±{m}; otherwise inconclusive" + few)
  raise ValueError(kind)


def decide(kind, estimate, ci, *, margin, n_seeds, min_seeds=MIN_SEEDS):
  """(verdict, why) of rule `kind` for an estimate with interval ci = (lo, hi) over n_seeds seeds."""
  margin = check_margin(margin)
  if kind not in _DIRECTION and kind != EQUIVALENT:
    raise ValueError(kind)
  if estimate is None or n_seeds == 0:
    return NOT_MEASURED, "no seed gives a value"
  if n_seeds < min_seeds or ci is None:
    return INCONCLUSIVE, f"too few seeds: {n_seeds} < {min_seeds}"
  lo, hi = ci
  inside = -margin < lo and hi < margin
  span = f"CI [{_fmt(lo)}, {_fmt(hi)}]"
  if kind == EQUIVALENT:
    if inside:
      return SUPPORTED, f"{span} inside ±{margin:g}"
    if lo >= margin or hi <= -margin:
      return NOT_SUPPORTED, f"{span} wholly outside ±{margin:g}"
    return INCONCLUSIVE, f"{span} straddles ±{margin:g}"
  s = _DIRECTION[kind]
  d_lo, d_hi = sorted((s * lo, s * hi))  # the interval in the claimed direction: > 0 means as claimed
  if d_lo > 0 and s * estimate >= margin:
    return SUPPORTED, f"{span} beyond 0 as claimed and estimate {_fmt(estimate)} at least {margin:g}"
  if inside:
    return NEGLIGIBLE, f"{span} inside ±{margin:g}"
  if d_hi < 0:
    return NOT_SUPPORTED, f"{span} wholly on the other side of 0"
  if d_lo > 0:
    return INCONCLUSIVE, f"{span} beyond 0 but estimate {_fmt(estimate)} smaller than {margin:g}"
  return INCONCLUSIVE, f"{span} includes 0 and effects of {margin:g} or more"


def vote(verdict):
  """What a component's verdict says about its claim: supported | not supported | inconclusive | None."""
  if verdict in (NOT_SUPPORTED, NEGLIGIBLE):
    return NOT_SUPPORTED
  if verdict == SUPPORTED:
    return SUPPORTED
  return None if verdict == NOT_APPLICABLE else INCONCLUSIVE


OVERALL_RULE = ("A claim is supported when every component is supported, not supported when any component is "
                "not supported or negligible, and inconclusive otherwise (a component not measured makes it "
                "inconclusive, so a claim about robustness is never supported by clean accuracy alone). In the "
                "worst_case control the eigenvalue component is not applicable and its verdict from the "
                "\"all\" control stands in for it.")


def combine(verdicts):
  """The claim's verdict from its components' verdicts (see OVERALL_RULE); not applicable ones do not vote."""
  votes = [vote(v) for v in verdicts if vote(v) is not None]
  if NOT_SUPPORTED in votes:
    return NOT_SUPPORTED
  return SUPPORTED if votes and all(v == SUPPORTED for v in votes) else INCONCLUSIVE


# ---------------------------------------------------------------------------------------------- the claims

FIXED, RATIO = effects.FIXED, effects.RATIO
STATEMENTS = {
    "C1": "At a fixed η, larger B gives worse generalization and adversarial robustness and a larger top "
          "Hessian eigenvalue.",
    "C2": "At a constant η/B, clean and adversarial accuracy are almost constant in B (a regime that does not "
          "train at some B is reported as a breakdown, not fitted).",
    "C3": "Momentum helps accuracy/robustness more at a fixed η (varying B) than at a constant η/B.",
}
PER_DOUBLING = "points per doubling of B"
LOG2_PER_DOUBLING = "log2 λ_max per doubling of B"


@dataclasses.dataclass(frozen=True)
class Component:
  """What one component measures: claim, name, regimes, metric, rule kind, which margin, unit, label."""
  claim: str
  name: str
  regimes: tuple
  metric: str  # clean | adv | log2_eig
  kind: str  # a rule below: DECREASE, INCREASE, POSITIVE or EQUIVALENT
  margin: str  # acc | eig | momentum
  unit: str
  label: str


COMPONENTS = (
    Component("C1", "clean", (FIXED,), "clean", DECREASE, "acc", PER_DOUBLING,
              "slope of clean test accuracy vs log2 B at fixed η"),
    Component("C1", "adv", (FIXED,), "adv", DECREASE, "acc", PER_DOUBLING,
              "slope of adversarial accuracy vs log2 B at fixed η"),
    Component("C1", "eig", (FIXED,), "log2_eig", INCREASE, "eig", LOG2_PER_DOUBLING,
              "slope of log2 λ_max vs log2 B at fixed η (the exponent k of λ_max ∝ B^k)"),
    Component("C2", "clean", (RATIO,), "clean", EQUIVALENT, "acc", PER_DOUBLING,
              "slope of clean test accuracy vs log2 B at constant η/B"),
    Component("C2", "adv", (RATIO,), "adv", EQUIVALENT, "acc", PER_DOUBLING,
              "slope of adversarial accuracy vs log2 B at constant η/B"),
    Component("C3", "adv", (FIXED, RATIO), "adv", POSITIVE, "momentum", "points",
              "E = M_fixed_lr − M_constant_ratio on adversarial accuracy"),
    Component("C3", "clean", (FIXED, RATIO), "clean", POSITIVE, "momentum", "points",
              "E = M_fixed_lr − M_constant_ratio on clean test accuracy"),
)
