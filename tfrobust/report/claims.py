"""Claims C1-C4 as the report tests them, in one place: what each claim states, the components it is judged on
(metric, regimes, rule, margin: COMPONENTS), and the rules themselves — `decide` applies a rule and `rule_text`
states it, from the same thresholds, so the report and docs/verdicts.md print exactly what decided. The claims
come from the study's definition, docs/study.md.

The minimum-effect rule: a claim that an effect exists is supported only when the whole 95% interval lies beyond
the practical margin in the claimed direction, so that a true effect at the margin is called supported at most
2.5% of the time (a rule that compared the point estimate with the margin called a true effect at the margin
supported about half the time). Estimates, intervals and margins share one unit (the report's: accuracy points
per doubling of B, log2 λ_max per doubling of B, accuracy points for C2's contrasts and for C3).
"""

import dataclasses
import math

from tfrobust.config import REGIMES
from tfrobust.errors import UsageError
from tfrobust.report import paired

SUPPORTED = "supported"
DIRECTION_ONLY = "direction shown, size not shown"
NEGLIGIBLE = "negligible"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_MEASURED = "not measured"
NOT_MEASURABLE = "not measurable at this ε"
NOT_APPLICABLE = "not applicable"
VERDICTS = (SUPPORTED, DIRECTION_ONLY, NEGLIGIBLE, CONTRADICTED, INCONCLUSIVE, NOT_MEASURED, NOT_MEASURABLE,
            NOT_APPLICABLE)
AGAINST = (NEGLIGIBLE, CONTRADICTED)  # verdicts that count against the claim
NOT_SUPPORTED = "not supported"  # a claim's verdict when a component counts against it

# Margins in the report's units. Accuracy: 1 percentage point per doubling of B (4 points over B = 16…256).
ACC_MARGIN = 1.0  # accuracy points per doubling of B (C1.clean, C1.adv; C4's accuracy terms)
# C2: accuracy points between any B and B_ref, a raw difference (not per doubling: a drop confined to the largest B
# must not be diluted by the doublings before it). 2 points: twice C1's margin per doubling, so that a step C1
# would call an effect at B ≥ 4·B_ref is outside it, and above the noise of one accuracy contrast on a 1,000-example
# test set (sd ≈ 1.3 points unpaired), so that equivalence stays within reach of the seeds a study runs.
C2_MARGIN = 2.0
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
  t2 = paired.t_quantile(0.975, 1)
  tmin = paired.t_quantile(0.975, min_seeds - 1)
  return (f"at least {min_seeds} seeds are needed for any verdict (95% t-interval half-width t·SE: "
          f"t_{{0.975,1}} = {t2:.1f} with 2 seeds, t_{{0.975,{min_seeds - 1}}} = {tmin:.2f} with {min_seeds}); "
          "fewer give \"inconclusive (too few seeds)\"")


def rule_text(kind, *, margin, unit, min_seeds=MIN_SEEDS):
  """The rule `decide` applies, in words."""
  check_margin(margin)
  m = f"{margin:g} {unit.replace('points', 'point', 1) if margin == 1 else unit}"
  few = f"; inconclusive when fewer than {min_seeds} seeds give a value"
  if kind in _DIRECTION:
    word = {DECREASE: "drop", INCREASE: "rise", POSITIVE: "positive effect"}[kind]
    side, wrong = ("below", "above") if kind == DECREASE else ("above", "below")
    sign = "−" if kind == DECREASE else "+"
    return (f"{word}: supported when the whole 95% interval lies {side} {sign}{m}; contradicted when it lies "
            f"wholly {wrong} 0; negligible when it lies inside ±{m}; \"{DIRECTION_ONLY}\" when it lies {side} 0 but "
            f"not wholly {side} {sign}{m}; otherwise inconclusive. Contradicted and negligible count against the "
            f"claim, \"{DIRECTION_ONLY}\" does not count for it" + few)
  if kind == EQUIVALENT:
    return (f"equivalence of every contrast, judged on the largest: supported when the simultaneous 95% interval "
            f"of every contrast lies inside ±{m}; contradicted when the interval of any contrast lies wholly "
            f"outside ±{m}; otherwise inconclusive" + few)
  raise ValueError(kind)


def decide(kind, ci, *, margin, n_seeds, min_seeds=MIN_SEEDS):
  """(verdict, why) of rule `kind` for one interval ci = (lo, hi) over n_seeds seeds."""
  margin = check_margin(margin)
  if kind not in _DIRECTION and kind != EQUIVALENT:
    raise ValueError(kind)
  if n_seeds == 0:
    return NOT_MEASURED, "no seed gives a value"
  if n_seeds < min_seeds or ci is None:
    return INCONCLUSIVE, f"too few seeds: {n_seeds} < {min_seeds}"
  lo, hi = ci
  span = f"CI [{_fmt(lo)}, {_fmt(hi)}]"
  inside = -margin < lo and hi < margin
  if kind == EQUIVALENT:
    if inside:
      return SUPPORTED, f"{span} inside ±{margin:g}"
    if lo >= margin or hi <= -margin:
      return CONTRADICTED, f"{span} wholly outside ±{margin:g}"
    return INCONCLUSIVE, f"{span} straddles ±{margin:g}"
  s = _DIRECTION[kind]
  d_lo, d_hi = sorted((s * lo, s * hi))  # the interval in the claimed direction: > 0 means as claimed
  if d_lo > margin:
    return SUPPORTED, f"{span} wholly beyond {_fmt(s * margin)} as claimed"
  if d_hi < 0:
    return CONTRADICTED, f"{span} wholly on the other side of 0"
  if inside:
    return NEGLIGIBLE, f"{span} inside ±{margin:g}"
  if d_lo > 0:
    return DIRECTION_ONLY, f"{span} beyond 0 as claimed, not beyond {_fmt(s * margin)}"
  return INCONCLUSIVE, f"{span} includes 0 and effects beyond {_fmt(s * margin)}"


_ORDER = (CONTRADICTED, NEGLIGIBLE, DIRECTION_ONLY, INCONCLUSIVE, NOT_MEASURED)


def combine_parts(verdicts):
  """A component's verdict from its parts (one per momentum): supported only when every part is; else the part
  that weighs most against the claim (contradicted, negligible, direction only, inconclusive, not measured)."""
  if verdicts and all(v == SUPPORTED for v in verdicts):
    return SUPPORTED
  return next((v for v in _ORDER if v in verdicts), INCONCLUSIVE)


def vote(verdict):
  """What a component's verdict says about its claim: supported | not supported | inconclusive | None."""
  if verdict in AGAINST:
    return NOT_SUPPORTED
  if verdict == SUPPORTED:
    return SUPPORTED
  return None if verdict == NOT_APPLICABLE else INCONCLUSIVE


OVERALL_RULE = ("A claim is supported when every component is supported, not supported when any component is "
                "contradicted or negligible, and inconclusive otherwise (a component not measured, not measurable "
                f"or \"{DIRECTION_ONLY}\" makes it inconclusive, so a claim about robustness is never supported by "
                "clean accuracy alone). A component of C1 or C2 is judged at every momentum of the grid and holds "
                "only where it holds at each (each is shown). In the adverse control the eigenvalue component is "
                "not applicable and its verdict from the all control stands in for it.")
FRAGILE_RULE = ("A claim is **fragile** when a component's vote flips between supported and not supported across "
                "the controls; a control on which it is only inconclusive (fewer trials, wider intervals) marks it "
                "**underpowered** there, not fragile.")


def combine(verdicts):
  """The claim's verdict from its components' verdicts (see OVERALL_RULE); not applicable ones do not vote."""
  votes = [vote(v) for v in verdicts if vote(v) is not None]
  if NOT_SUPPORTED in votes:
    return NOT_SUPPORTED
  return SUPPORTED if votes and all(v == SUPPORTED for v in votes) else INCONCLUSIVE


# ---------------------------------------------------------------------------------------------- the claims

FIXED, RATIO = "fixed_lr", "constant_ratio"
STATEMENTS = {
    "C1": "At a fixed η, larger B gives worse generalization and adversarial robustness and a larger top "
          "Hessian eigenvalue, at every momentum of the grid.",
    "C2": "At a constant η/B, clean and adversarial accuracy are almost constant in B at every momentum of the "
          "grid: at every batch size of the grid, acc(B) − acc(B_ref) lies within ± the C2 margin (accuracy points, "
          "a raw difference, not per doubling; B_ref the smallest B), judged on the largest difference with a "
          "simultaneous 95% interval; a grid B or momentum without a value leaves the claim unshown.",
    "C3": "Momentum helps accuracy/robustness more when B varies at a fixed η than at a constant η/B (the "
          "difference in differences, over the B where both regimes ran both momenta).",
    "C4": "Clean accuracy, adversarial accuracy and λ_max depend on (η, B, μ) only through the SGD temperature "
          "T = η/(B(1−μ)) (Jastrzebski et al. 2017, Smith & Le 2018): at a fixed T, neither B nor μ moves them by "
          "more than the margin.",
}
PER_DOUBLING = "points per doubling of B"
C2_UNIT = "points (acc(B) − acc(B_ref))"
LOG2_PER_DOUBLING = "log2 λ_max per doubling of B"
AT_FIXED_T = "points at fixed T (log2 B term per doubling of B; μ term from the lowest to the highest μ)"
LOG2_AT_FIXED_T = "log2 λ_max at fixed T (log2 B term per doubling of B; μ term from the lowest to the highest μ)"
_C4_FIT = ("by least squares within each seed on a quadratic in log2 T plus log2 B and μ, over every regime; "
           "the log2 B and μ coefficients")


@dataclasses.dataclass(frozen=True)
class Component:
  """What one component measures: claim, name, regimes, metric, rule kind, which margin, unit, label."""
  claim: str
  name: str
  regimes: tuple
  metric: str  # clean | adv | log2_eig
  kind: str  # a rule above: DECREASE, INCREASE, POSITIVE or EQUIVALENT
  margin: str  # acc | eig | momentum | c2
  unit: str
  label: str


COMPONENTS = (
    Component("C1", "clean", (FIXED,), "clean", DECREASE, "acc", PER_DOUBLING,
              "slope of clean test accuracy vs log2 B at fixed η, per momentum"),
    Component("C1", "adv", (FIXED,), "adv", DECREASE, "acc", PER_DOUBLING,
              "slope of adversarial accuracy vs log2 B at fixed η, per momentum"),
    Component("C1", "eig", (FIXED,), "log2_eig", INCREASE, "eig", LOG2_PER_DOUBLING,
              "slope of log2 λ_max vs log2 B at fixed η, per momentum (the exponent k of λ_max ∝ B^k)"),
    Component("C2", "clean", (RATIO,), "clean", EQUIVALENT, "c2", C2_UNIT,
              "per-B contrast acc(B) − acc(B_ref) of clean test accuracy at constant η/B, in points, per momentum"),
    Component("C2", "adv", (RATIO,), "adv", EQUIVALENT, "c2", C2_UNIT,
              "per-B contrast acc(B) − acc(B_ref) of adversarial accuracy at constant η/B, in points, per momentum"),
    Component("C3", "adv", (FIXED, RATIO), "adv", POSITIVE, "momentum", "points",
              "E = mean over (seed, B) of [gain of momentum at fixed η − gain at constant η/B], adversarial"),
    Component("C3", "clean", (FIXED, RATIO), "clean", POSITIVE, "momentum", "points",
              "E = mean over (seed, B) of [gain of momentum at fixed η − gain at constant η/B], clean"),
    Component("C4", "clean", tuple(REGIMES), "clean", EQUIVALENT, "acc", AT_FIXED_T,
              f"clean test accuracy regressed {_C4_FIT}"),
    Component("C4", "adv", tuple(REGIMES), "adv", EQUIVALENT, "acc", AT_FIXED_T,
              f"adversarial accuracy regressed {_C4_FIT}"),
    Component("C4", "eig", tuple(REGIMES), "log2_eig", EQUIVALENT, "eig", LOG2_AT_FIXED_T,
              f"log2 λ_max regressed {_C4_FIT}"),
)
