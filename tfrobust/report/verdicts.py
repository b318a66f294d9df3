"""Claims C1-C3 (claims.py) judged per component and control: the rows of DIR/report/verdicts.json.

The unit of replication is the seed: each effect is computed within one seed (a slope over log2 B, a
difference between momenta), then the per-seed values give a mean, a Student-t interval over seeds and a
bootstrap interval over seeds and test examples (stats.py); the rule (claims.py) judges the
union of the two. Estimates are reported in accuracy points (per doubling of B for slopes) or in log2 λ_max
per doubling of B.
"""

import dataclasses
from typing import List, Optional

from tfrobust.report import claims as rules
from tfrobust.report import effects, quality, stats
from tfrobust.report.claims import (ACC_MARGIN, COMPONENTS, EIG_MARGIN, MIN_SEEDS,  # noqa: F401 (re-exported)
                                    MOMENTUM_MARGIN, STATEMENTS)


@dataclasses.dataclass(frozen=True)
class Observation:
  """One trial reduced to what the claims need (not a grid point: tfrobust.study.grid.GridPoint is what a trial
  trains, an Observation what the report read of it). Accuracies are fractions; n_* are the test examples behind an
  accuracy (None: no test-set resampling); kind and reason come from quality.classify."""
  regime: str
  batch_size: int
  momentum: float
  seed: int
  clean: Optional[float]
  adv: Optional[float] = None  # adversarial accuracy at the report's attack and ε
  top_eig: Optional[float] = None  # λ_max, algebraically largest Hessian eigenvalue (may be ≤ 0)
  trial_id: str = ""
  kind: str = quality.USABLE
  reason: str = ""
  trained: Optional[bool] = True  # None: cannot be told (no loss history); counts as not trained
  trained_reason: str = ""
  n_clean: Optional[int] = None
  n_adv: Optional[int] = None
  chance: float = 0.1
  lr_used: Optional[float] = None
  train_loss: Optional[float] = None


def margins(*, acc_margin=ACC_MARGIN, eig_margin=EIG_MARGIN, momentum_margin=MOMENTUM_MARGIN):
  return {"acc": rules.check_margin(acc_margin, "acc_margin"), "eig": rules.check_margin(eig_margin, "eig_margin"),
          "momentum": rules.check_margin(momentum_margin, "momentum_margin")}


def _per_seed(comp, points, control, pair):
  """(per-seed terms, excluded, reason when not measurable)."""
  items, excluded = effects.select(points, comp.metric, control, comp.regimes)
  if comp.claim != "C3":
    return effects.slope_terms(items), excluded + effects.unused(items), ""
  if pair is None:
    return {}, excluded, "needs two momenta in both fixed_lr and constant_ratio"
  fixed = [it for it in items if it[0].regime == effects.FIXED]
  ratio = [it for it in items if it[0].regime == effects.RATIO]
  return (effects.c3_terms(fixed, ratio, low=pair[0], high=pair[1]),
          excluded + effects.unused(items, c3_pair=pair), "")


def _row(comp, control, margin, **fields):
  row = {"claim": comp.claim, "component": comp.name, "control": control, "label": comp.label,
         "regimes": list(comp.regimes), "unit": comp.unit, "rule": comp.kind, "margin": margin,
         "estimate": None, "ci": None, "ci_t": None, "ci_bootstrap": None, "n_seeds": 0, "excluded": [],
         "doubtful": []}
  row.update(fields)
  return row


def judge(comp, points, control, margin, *, min_seeds=MIN_SEEDS, pair=None):
  """One row: estimate, intervals (t, bootstrap, their union), verdict and why, who was left out."""
  if control == effects.WORST_CASE and comp.metric == "log2_eig":
    return _row(comp, control, margin, verdict=rules.NOT_APPLICABLE,
                why="a collapsed or diverged network has no worst-case curvature")
  if control == effects.TRAINED and not any(p.trained is not None for p in points if p.kind in quality.IN_FITS):
    return _row(comp, control, margin, verdict=rules.NOT_APPLICABLE,
                why="no trial records a training loss history, so none can be shown trained")
  per_seed, excluded, missing = _per_seed(comp, points, control, pair)
  scale = 1.0 if comp.metric == "log2_eig" else 100.0
  values = stats.seed_values(per_seed)
  est = stats.mean_ci(values)
  boot = stats.bootstrap_interval(per_seed, key=f"{comp.claim}.{comp.name}.{control}")
  ci_t = (est.lo, est.hi) if est is not None and est.has_ci else None
  ci = stats.hull(ci_t, boot)
  up = (lambda iv: None if iv is None else [scale * iv[0], scale * iv[1]])  # noqa: E731
  mean = None if est is None else scale * est.mean
  verdict, why = rules.decide(comp.kind, mean, up(ci), margin=margin, n_seeds=len(values), min_seeds=min_seeds)
  if missing:
    why = missing
  doubtful = [{"trial_id": p.trial_id, "reason": p.reason} for p in points
              if p.regime in comp.regimes and p.kind == quality.DOUBTFUL]
  return _row(comp, control, margin, estimate=mean, ci=up(ci), ci_t=up(ci_t), ci_bootstrap=up(boot),
              n_seeds=len(values), verdict=verdict, why=why, excluded=excluded, doubtful=doubtful)


def _claim_rows(claim, rows):
  """One row per control with the combined verdict; fragile when a component votes differently in the trained
  or worst_case control than in "all"."""
  mine = [r for r in rows if r["claim"] == claim]
  base = {r["component"]: r for r in mine if r["control"] == effects.ALL}
  reasons = []
  for r in mine:
    if r["control"] == effects.ALL or r["verdict"] == rules.NOT_APPLICABLE:
      continue
    a = base[r["component"]]
    if rules.vote(a["verdict"]) != rules.vote(r["verdict"]):
      left = sum(1 for e in r["excluded"] if e not in a["excluded"])
      why = f"; {left} more trial(s) left out" if left else ""
      reasons.append(f"{claim}.{r['component']}: {a['verdict']} on all, {r['verdict']} on {r['control']} "
                     f"({r['why']}{why})")
  out = []
  for control in effects.CONTROLS:
    verdicts = [(base[r["component"]] if r["verdict"] == rules.NOT_APPLICABLE and control == effects.WORST_CASE
                 else r)["verdict"] for r in mine if r["control"] == control]
    na = all(r["verdict"] == rules.NOT_APPLICABLE for r in mine if r["control"] == control)
    out.append({"claim": claim, "component": "claim", "control": control, "statement": STATEMENTS[claim],
                "verdict": rules.NOT_APPLICABLE if na else rules.combine(verdicts), "fragile": bool(reasons),
                "fragile_reasons": reasons, "estimate": None, "ci": None, "ci_t": None, "ci_bootstrap": None,
                "margin": None, "n_seeds": None, "excluded": [], "doubtful": []})
  return out


def judge_claims(points, *, acc_margin=ACC_MARGIN, eig_margin=EIG_MARGIN, momentum_margin=MOMENTUM_MARGIN,
                 min_seeds=MIN_SEEDS) -> List[dict]:
  """Every component on every control, then one row per claim and control (component "claim")."""
  m = margins(acc_margin=acc_margin, eig_margin=eig_margin, momentum_margin=momentum_margin)
  pair = effects.momenta_compared(points)
  rows = []
  for claim in STATEMENTS:
    mine = [judge(c, points, control, m[c.margin], min_seeds=min_seeds, pair=pair)
            for c in COMPONENTS if c.claim == claim for control in effects.CONTROLS]
    rows += mine + _claim_rows(claim, mine)
  return rows


def find(rows, claim, component="claim", control=effects.ALL):
  """The row of one claim/component/control."""
  return next(r for r in rows if (r["claim"], r["component"], r["control"]) == (claim, component, control))


def rule_lines(m=None, *, min_seeds=MIN_SEEDS):
  """Every component's rule in words, as `evaluate` applies it."""
  m = m or margins()
  return [f"{c.claim}.{c.name} ({c.label}): "
          f"{rules.rule_text(c.kind, margin=m[c.margin], unit=c.unit, min_seeds=min_seeds)}." for c in COMPONENTS]


def summarize(points, regime, metric, *, control=effects.ALL):
  """{momentum: [(B, Estimate over seeds)]} of a metric's level, for the figures (accuracies clipped to
  [0, 1]; metric "eig" is λ_max itself, positive values only)."""
  vals = {}
  for p in points:
    if p.regime != regime:
      continue
    v, _, _ = effects.value(p, "log2_eig" if metric == "eig" else metric, control)
    if v is not None:
      vals.setdefault(p.momentum, {}).setdefault(p.batch_size, {}).setdefault(p.seed, []).append(
          2.0 ** v if metric == "eig" else v)
  out = {}
  for mom in sorted(vals):
    rows = []
    for b in sorted(vals[mom]):
      est = stats.mean_ci([sum(v) / len(v) for v in vals[mom][b].values()])
      rows.append((b, est if metric == "eig" else stats.clip(est)))
    out[mom] = rows
  return out


def descriptive_slope(points, regime, metric, momentum):
  """Mean [t-interval] over seeds of one momentum's slope, control all (fractions or log2 per doubling)."""
  items, _ = effects.select(points, metric, effects.ALL, (regime,))
  return stats.mean_ci(stats.seed_values(effects.slope_terms(items, momentum=momentum)))
