"""Claims C1-C3 (claims.py) judged per component and control: the rows of DIR/report/verdicts.json.

The unit of replication is the seed; every effect is computed within one seed from the networks' per-example
outcomes (effects.py) and its interval keeps the seeds', each network's and the shared test-set noise (paired.py). A component of
C1 or C2 is judged at every momentum (its `parts`, each shown) and holds only where it holds at each.
"""

import dataclasses
import statistics
from typing import Any, List, Optional, Tuple

import numpy as np

from tfrobust.report import claims as rules
from tfrobust.report import advice, effects, paired, quality, stats
from tfrobust.report.claims import (ACC_MARGIN, C2_MARGIN, COMPONENTS, EIG_MARGIN,  # noqa: F401 (re-exported)
                                    MIN_SEEDS, MOMENTUM_MARGIN, STATEMENTS)

# A cell (regime × B × μ) is at a floor or ceiling when its mean accuracy p on n test examples leaves fewer than
# FLOOR_COUNT expected errors or successes, n·min(p, 1 − p): an accuracy is information about the examples that
# can still change sides, so 99.7% on 10,000 examples (30 errors) moves measurably and 99.7% on 500 (1.5) does
# not, which no fixed distance from 0% or 100% can tell apart. 5 is the usual bound below which the normal
# approximation to a binomial fails.
FLOOR_COUNT = 5
FLOOR_SHARE = 0.5  # ... in more than half of the component's cells: the component is not measurable at this ε


@dataclasses.dataclass(frozen=True, eq=False)
class Observation:
  """One trial reduced to what the claims need (not a grid point: tfrobust.study.grid.GridPoint is what a trial
  trains, an Observation what the report read of it). Accuracies are fractions; clean_ex / adv_ex the per-example
  outcomes (bool, the study's shared example order; None: not recorded, then n_* test examples stand for a
  binomial); kind and reason come from quality.classify."""
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
  trained: Optional[bool] = True  # None: cannot be told (no training loss); counts as not trained
  trained_reason: str = ""
  n_clean: Optional[int] = None
  n_adv: Optional[int] = None
  chance: float = 0.1
  lr_used: Optional[float] = None
  train_loss: Optional[float] = None
  clean_ex: Optional[np.ndarray] = None
  adv_ex: Optional[np.ndarray] = None
  adv_curve: Tuple[Tuple[float, float], ...] = ()  # (ε, accuracy) of the report's attack and norm
  input_eig: Optional[float] = None  # the input Hessian's top eigenvalue (hessian.input_top_eigenvalue.mean)
  grad_norm: Optional[float] = None  # mean input-gradient norm, where the run recorded it (data.GRAD_NORM_KEYS)
  eps_free: Optional[Any] = None  # epsfree.EpsFree of the report's attack and norm, from examples.npz
  seconds: Optional[float] = None  # the trial's wall time (results.jsonl wall_s): the advice's cost in hours


def margins(*, acc_margin=ACC_MARGIN, eig_margin=EIG_MARGIN, momentum_margin=MOMENTUM_MARGIN, c2_margin=C2_MARGIN):
  return {"acc": rules.check_margin(acc_margin, "acc_margin"), "eig": rules.check_margin(eig_margin, "eig_margin"),
          "momentum": rules.check_margin(momentum_margin, "momentum_margin"),
          "c2": rules.check_margin(c2_margin, "c2_margin")}


def _row(comp, control, margin, **fields):
  row = {"claim": comp.claim, "component": comp.name, "control": control, "label": comp.label,
         "regimes": list(comp.regimes), "unit": comp.unit, "rule": comp.kind, "margin": margin,
         "estimate": None, "ci": None, "n_seeds": 0, "parts": [], "advice": None, "excluded": [],
         "doubtful": [], "adverse_scored": [], "note": ""}
  row.update(fields)
  return row


def _expected(p, n):
  return n * min(p, 1 - p)


def floor_text(comp, points):
  """Why a component is not measurable (in most of its cells fewer than FLOOR_COUNT expected errors or
  successes), naming an ε of the grid that would be measurable; None when it is measurable."""
  if comp.metric in ("log2_eig", "adv_auc"):
    return None
  fitted = [p for p in points if p.regime in comp.regimes and p.kind in quality.IN_FITS]
  cells = {}
  for p in fitted:
    v = p.clean if comp.metric == "clean" else p.adv
    ex = p.clean_ex if comp.metric == "clean" else p.adv_ex
    n = len(ex) if ex is not None else (p.n_clean if comp.metric == "clean" else p.n_adv)
    if v is not None and n:
      cells.setdefault((p.regime, p.batch_size, p.momentum), []).append((v, n))
  at = [k for k, vs in cells.items()
        if _expected(statistics.mean(v for v, _ in vs), statistics.median(n for _, n in vs)) < FLOOR_COUNT]
  if not cells or len(at) <= FLOOR_SHARE * len(cells):
    return None
  what = (f"{len(at)} of {len(cells)} cells with fewer than {FLOOR_COUNT} expected errors or successes "
          "(n·min(p, 1 − p))")
  if comp.metric == "clean":
    return what + "; clean accuracy has no ε to move to"
  medians, ns = {}, [p.n_adv for p in fitted if p.n_adv]
  n_adv = statistics.median(ns) if ns else 0
  for p in fitted:
    for e, a in p.adv_curve:
      medians.setdefault(e, []).append(a)
  ok = {e: statistics.median(a) for e, a in medians.items() if _expected(statistics.median(a), n_adv) >= FLOOR_COUNT}
  best = min(ok, key=lambda e: abs(ok[e] - 0.5)) if ok else None
  return what + (f"; ε = {best:g} would be (median accuracy {100 * ok[best]:.0f}%)" if best is not None
                 else "; no ε of the grid has a median accuracy away from 0% and 100%")


def _judge_parts(comp, qs, margin, key, min_seeds, level=paired.LEVEL):
  """(parts, intervals): one verdicts.json part and its paired.Interval per quantity (per judged quantity only
  where qs holds no shown ones)."""
  scale = 1.0 if comp.metric == "log2_eig" else 100.0
  groups = ([[q for q in qs if q.momentum == mu] for mu in sorted({q.momentum for q in qs})]
            if comp.kind == rules.EQUIVALENT else [qs])
  parts, ivs_all = [], []
  for g in groups:
    ivs = paired.intervals([q.terms for q in g], key=key, scale=scale, simultaneous=comp.kind == rules.EQUIVALENT,
                           level=level)
    for q, iv in zip(g, ivs):
      ci = None if iv.lo is None else [iv.lo, iv.hi]
      verdict, why = rules.decide(comp.kind, ci, margin=margin, n_seeds=iv.n_seeds, min_seeds=min_seeds)
      why = q.why if iv.n_seeds == 0 and q.why else why
      parts.append({"name": q.name, "momentum": q.momentum, "batch_size": q.batch_size, "judged": q.judged,
                    "estimate": None if iv.n_seeds == 0 else iv.estimate, "ci": ci, "n_seeds": iv.n_seeds,
                    "verdict": verdict if q.judged else "shown", "why": why, "sd": _sds(iv)})
      ivs_all.append(iv)
  return parts, ivs_all


def _sds(iv):
  """The interval's parts in report units: the seeds' observed sd, one seed's own and the shared test-set sd."""
  if iv.se is None:
    return None
  return {"seed": iv.sd_seed, "own_test_set": iv.sd_own, "shared_test_set": iv.sd_shared}


def _cost(points):
  """(trials per seed, median trial seconds) of the study, for the advice's cost."""
  seeds = {p.seed for p in points}
  secs = sorted(p.seconds for p in points if p.seconds)
  return (len(points) // len(seeds) if seeds else None), (statistics.median(secs) if secs else None)


def judge(comp, points, control, margin, *, min_seeds=MIN_SEEDS, pair=None, grid=None, with_advice=True,
          level=paired.LEVEL, shown=True):
  """One row: the parts (per momentum, per contrast), the component's verdict and why, who was left out, and
  (with_advice) what would decide it; shown=False leaves out the parts that are shown but not judged (C1's
  per-B contrasts: the calibration needs only the verdict). grid: the momenta and B judged (effects.Grid; default: those of every trial,
  failed ones included). level: the intervals' confidence (a group-sequential look's, sequential.py)."""
  grid = grid or effects.grid_of(points)
  if control == effects.ADVERSE and comp.metric == "log2_eig":
    return _row(comp, control, margin, verdict=rules.NOT_APPLICABLE,
                why="a collapsed or diverged network has no adverse curvature")
  if control == effects.TRAINED and not any(p.trained is not None for p in points if p.kind in quality.IN_FITS):
    return _row(comp, control, margin, verdict=rules.NOT_APPLICABLE,
                why="no trial records a final training loss, so none can be shown trained")
  items, excluded = effects.select(points, comp.metric, control, comp.regimes)
  scored = []
  if control == effects.ADVERSE:
    items, scored = effects.resolve_adverse(comp, items, pair, grid)
  qs, note = effects.quantities(comp, items, pair, grid)
  doubtful = [{"trial_id": p.trial_id, "reason": p.reason} for p in points
              if p.regime in comp.regimes and p.kind == quality.DOUBTFUL]
  base = dict(excluded=excluded + effects.unused(items, qs), doubtful=doubtful, adverse_scored=scored, note=note)
  floor = floor_text(comp, points)
  if floor:
    return _row(comp, control, margin, verdict=rules.NOT_MEASURABLE, why=floor, **base)
  judged = [q for q in qs if q.judged]
  if not judged or all(not q.terms for q in judged):
    return _row(comp, control, margin, verdict=rules.NOT_MEASURED, why=note or "no seed gives a value", **base)
  parts, ivs = _judge_parts(comp, qs if shown else [q for q in qs if q.judged], margin,
                            f"{comp.claim}.{comp.name}", min_seeds, level)
  jp = [p for p in parts if p["judged"]]
  verdict = rules.combine_parts([p["verdict"] for p in jp])
  same = [p for p in jp if p["verdict"] == verdict] or jp
  cands = [p for p in same if p["estimate"] is not None]
  if not cands:  # a part not measured decides: it has no estimate
    decider = same[0]
  elif comp.kind == rules.EQUIVALENT:
    decider = max(cands, key=lambda p: abs(p["estimate"]))
  else:
    decider = min(cands, key=lambda p: rules._DIRECTION[comp.kind] * p["estimate"])  # pylint: disable=W0212
  trials_per_seed, seconds = _cost(points)
  needs = advice.advise(comp, verdict, parts, ivs, margin, trials_per_seed=trials_per_seed,
                        trial_seconds=seconds) if with_advice else None
  return _row(comp, control, margin, estimate=decider["estimate"], ci=decider["ci"], n_seeds=decider["n_seeds"],
              parts=parts, verdict=verdict, why=f"{decider['name']}: {decider['why']}", advice=needs, **base)


def _claim_rows(claim, rows):
  """One row per control with the combined verdict; fragile when a component's vote flips between supported and
  not supported across controls, underpowered where it is only inconclusive."""
  mine = [r for r in rows if r["claim"] == claim]
  base = {r["component"]: r for r in mine if r["control"] == effects.ALL}
  reasons, weak = [], []
  for comp in base:
    by = {r["control"]: r for r in mine if r["component"] == comp and r["verdict"] != rules.NOT_APPLICABLE}
    votes = {c: rules.vote(r["verdict"]) for c, r in by.items()}
    yes = [c for c, v in votes.items() if v == rules.SUPPORTED]
    if yes and any(v == rules.NOT_SUPPORTED for v in votes.values()):
      for c, v in votes.items():
        if v == rules.NOT_SUPPORTED:
          reasons.append(f"{claim}.{comp}: supported on {', '.join(yes)}, {by[c]['verdict']} on {c} ({by[c]['why']})")
    if yes:
      weak += [f"{claim}.{comp} on {c} ({by[c]['why']})" for c, v in votes.items() if v == rules.INCONCLUSIVE]
  out = []
  for control in effects.CONTROLS:
    verdicts = [(base[r["component"]] if r["verdict"] == rules.NOT_APPLICABLE and control == effects.ADVERSE
                 else r)["verdict"] for r in mine if r["control"] == control]
    na = all(r["verdict"] == rules.NOT_APPLICABLE for r in mine if r["control"] == control)
    out.append({"claim": claim, "component": "claim", "control": control, "statement": STATEMENTS[claim],
                "verdict": rules.NOT_APPLICABLE if na else rules.combine(verdicts), "fragile": bool(reasons),
                "fragile_reasons": reasons, "underpowered": weak, "estimate": None, "ci": None, "margin": None,
                "n_seeds": None, "parts": [], "excluded": [], "doubtful": []})
  return out


def judge_claims(points, *, acc_margin=ACC_MARGIN, eig_margin=EIG_MARGIN, momentum_margin=MOMENTUM_MARGIN,
                 c2_margin=C2_MARGIN, min_seeds=MIN_SEEDS, controls=effects.CONTROLS, sweep=None,
                 level=paired.LEVEL) -> List[dict]:
  """Every component on every control, then one row per claim and control (component "claim"). sweep: the
  sweep.json dict, whose grid decides the momenta and B judged (effects.grid_of); level: the intervals'
  confidence (a look of a sequential study, sequential.py)."""
  m = margins(acc_margin=acc_margin, eig_margin=eig_margin, momentum_margin=momentum_margin, c2_margin=c2_margin)
  grid = effects.grid_of(points, sweep)
  pair = effects.momenta_compared(points, grid)
  rows = [judge(c, points, control, m[c.margin], min_seeds=min_seeds, pair=pair, grid=grid, level=level)
          for claim in STATEMENTS for c in COMPONENTS if c.claim == claim for control in controls]
  return with_claim_rows(rows, controls)


def with_claim_rows(component_rows, controls=effects.CONTROLS):
  """The component rows, each claim's followed by its claim rows (when every control was judged)."""
  rows = []
  for claim in STATEMENTS:
    mine = [r for r in component_rows if r["claim"] == claim]
    rows += mine + (_claim_rows(claim, mine) if tuple(controls) == effects.CONTROLS else [])
  return rows


def find(rows, claim, component="claim", control=effects.ALL):
  """The row of one claim/component/control."""
  return next(r for r in rows if (r["claim"], r["component"], r["control"]) == (claim, component, control))


def rule_lines(m=None, *, min_seeds=MIN_SEEDS):
  """Every component's rule in words, as `judge` applies it."""
  m = m or margins()
  return [f"{c.claim}.{c.name} ({c.label}): "
          f"{rules.rule_text(c.kind, margin=m[c.margin], unit=c.unit, min_seeds=min_seeds)}." for c in COMPONENTS]


def summarize(points, regime, metric, *, control=effects.ALL):
  """{momentum: [(B, Estimate over seeds)]} of a metric's level, for the figures (accuracies clipped to
  [0, 1]; metric "eig" is λ_max itself, positive values only)."""
  items, _ = effects.select(points, "log2_eig" if metric == "eig" else metric, control, (regime,))
  vals = {}
  for p, m in items:
    v = 2.0 ** m.value if metric == "eig" else m.value
    vals.setdefault(p.momentum, {}).setdefault(p.batch_size, {}).setdefault(p.seed, []).append(v)
  out = {}
  for mom in sorted(vals):
    rows = []
    for b in sorted(vals[mom]):
      est = stats.mean_ci([sum(v) / len(v) for v in vals[mom][b].values()])
      rows.append((b, est if metric == "eig" else stats.clip(est)))
    out[mom] = rows
  return out


def floor_rule():
  return (f"A component is \"{rules.NOT_MEASURABLE}\" when more than {100 * FLOOR_SHARE:.0f}% of its cells "
          f"(regime × B × μ) are at a floor or ceiling: fewer than {FLOOR_COUNT} expected errors or successes, "
          "n·min(p, 1 − p) with p the cell's mean accuracy over seeds and n the test examples behind it (so 99.7% is "
          "measurable on 10,000 examples, 30 errors, and not on 500, 1.5); the report names an ε of the grid whose "
          f"median accuracy leaves at least {FLOOR_COUNT} and is nearest 50%. A proportion of 0 or 1 gets the "
          "continuity-corrected variance p̃(1 − p̃)/n, p̃ = (x + ½)/(n + 1).")
