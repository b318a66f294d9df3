"""Studies that add seeds look by look until each claim is decided (`tfrobust.sweep --seeds=auto`): the
group-sequential rule that keeps P(supported | claim false) ≤ 2.5% (one-sided) across all looks.

A plan fixes the looks before the first trial: the seed counts S_1 < … < S_K = S_max (default 3, 6, 12, 24).
The error is spent with the Lan–DeMets O'Brien–Fleming function of the information fraction τ = S/S_max,
α(τ) = 2 − 2Φ(z_{1−α/2}/√τ), α = 0.025 one-sided: look k may spend a_k = α(τ_k) − α(τ_{k−1}), and its intervals are
built at the two-sided level 1 − 2·a_k (every quantile of paired.py at that level: t_{S−1} for the seeds' part, z
for the test-set parts, the family maxima for C2 and C4). A false claim crosses at look k with probability at most
a_k, so at most Σ a_k = α over all looks whatever their correlation (Bonferroni over the looks, slightly
conservative against the exact recursive boundary). O'Brien–Fleming spends almost nothing early (3 of 24 seeds:
a = 2·10⁻¹⁰; 6: 7·10⁻⁶; 12: 0.0015) and keeps nearly the whole 2.5% for the last look (0.0235), so a study that
runs to the cap loses little power against a fixed design, while an effect far beyond the margin stops at 12 seeds.
Pocock's constant boundary stops earlier and loses power at the cap; a plug-in internal pilot (choose the seeds
from the first look's variance, then test at 2.5%) doubled the nominal rate in a simulation.

A component's verdict is frozen at its first decision (supported, contradicted, negligible); "negligible" and
"contradicted" may stop a component early (futility, non-binding: they use the same intervals, which only makes
them rarer). A study stops when every component is decided, or cannot be decided within the cap (the advice says
no number of seeds can, or more than S_max), or S_max is reached.
"""

import dataclasses
import math
from typing import Dict, List, Sequence

from scipy import stats as sp_stats

from tfrobust.errors import UsageError
from tfrobust.report import advice, claims, effects, verdicts

ALPHA = 0.025  # one-sided: P(supported | claim false) over every look
LOOKS = (3, 6, 12, 24)
MAX_SEEDS_CAP = 200
DECIDED = (claims.SUPPORTED, claims.CONTRADICTED, claims.NEGLIGIBLE)


@dataclasses.dataclass(frozen=True)
class Plan:
  """The looks (seed counts, ascending, the last = max_seeds) and the one-sided α spent over them."""
  looks: tuple
  alpha: float = ALPHA

  @property
  def max_seeds(self):
    return self.looks[-1]

  def as_dict(self):
    return {"looks": list(self.looks), "max_seeds": self.max_seeds, "alpha": self.alpha,
            "spending": "Lan-DeMets O'Brien-Fleming, Bonferroni over looks"}


def make_plan(looks=LOOKS, max_seeds=LOOKS[-1], min_seeds=claims.MIN_SEEDS) -> Plan:
  """The plan of `--looks` and `--max_seeds`: looks below the cap, then the cap. UsageError on bad input."""
  looks = tuple(looks)
  if not looks or any(not isinstance(s, int) or isinstance(s, bool) for s in looks):
    raise UsageError(f"--looks={','.join(map(str, looks))}: needs integers")
  if any(b <= a for a, b in zip(looks, looks[1:])):
    raise UsageError(f"--looks={','.join(map(str, looks))}: must be strictly ascending")
  if looks[0] < min_seeds:
    raise UsageError(f"--looks: the first look needs at least {min_seeds} seeds (got {looks[0]})")
  if not isinstance(max_seeds, int) or max_seeds > MAX_SEEDS_CAP:
    raise UsageError(f"--max_seeds={max_seeds}: at most {MAX_SEEDS_CAP}")
  if max_seeds < looks[0]:
    raise UsageError(f"--max_seeds={max_seeds}: below the first look ({looks[0]} seeds)")
  return Plan(tuple(s for s in looks if s < max_seeds) + (max_seeds,))


def plan_of(sweep):
  """The Plan recorded in a sweep.json (None for a study with fixed seeds)."""
  seq = (sweep or {}).get("sequential")
  if not isinstance(seq, dict) or not seq.get("looks"):
    return None
  return Plan(tuple(int(s) for s in seq["looks"]), float(seq.get("alpha", ALPHA)))


def spent(fraction, alpha=ALPHA):
  """α(τ) of the O'Brien–Fleming-type spending function (module docstring)."""
  if fraction <= 0:
    return 0.0
  return float(2 - 2 * sp_stats.norm.cdf(sp_stats.norm.ppf(1 - alpha / 2) / math.sqrt(min(fraction, 1.0))))


def nominal(plan: Plan) -> List[float]:
  """The one-sided α each look may spend: a_k = α(τ_k) − α(τ_{k−1})."""
  cum = [spent(s / plan.max_seeds, plan.alpha) for s in plan.looks]
  return [c - p for c, p in zip(cum, [0.0] + cum[:-1])]


def levels(plan: Plan) -> List[float]:
  """The two-sided confidence level of each look's intervals, 1 − 2·a_k."""
  return [1 - 2 * a for a in nominal(plan)]


def _subset(points, seeds):
  order = sorted({p.seed for p in points})[:seeds]
  keep = set(order)
  return [p for p in points if p.seed in keep], len(order)


def judge(points, plan: Plan, *, controls=effects.CONTROLS, sweep=None, **margins_kw) -> List[dict]:
  """Every component on every control judged look by look (the first seeds of each look), each frozen at its
  first decision; the rows of the last look reached, with `sequential`: the looks, their levels, the seeds the
  component used and its verdict history. The claim rows combine the frozen components as verdicts.py does."""
  lv = levels(plan)
  have = len({p.seed for p in points})
  frozen: Dict[tuple, dict] = {}
  history: Dict[tuple, list] = {}
  last = None
  for look, (seeds, level) in enumerate(zip(plan.looks, lv)):
    if seeds > have:
      break
    subset, n = _subset(points, seeds)
    rows = verdicts.judge_claims(subset, controls=controls, sweep=sweep, level=level, **margins_kw)
    for row in rows:
      if row["component"] == "claim":
        continue
      key = (row["claim"], row["component"], row["control"])
      history.setdefault(key, []).append({"look": look + 1, "seeds": n, "level": level,
                                          "verdict": row["verdict"], "ci": row["ci"]})
      if key not in frozen and (row["verdict"] in DECIDED or row["verdict"] in (claims.NOT_APPLICABLE,)):
        frozen[key] = dict(row, stopped_at=n)
    last = rows
  if last is None:
    return verdicts.judge_claims(points, controls=controls, sweep=sweep, **margins_kw)
  out = []
  for row in last:
    if row["component"] == "claim":
      continue
    key = (row["claim"], row["component"], row["control"])
    final = frozen.get(key, dict(row, stopped_at=None))
    final["sequential"] = {"plan": plan.as_dict(), "levels": lv, "seeds_used": final["stopped_at"] or
                           max(h["seeds"] for h in history[key]), "history": history[key]}
    out.append(final)
  return verdicts.with_claim_rows(out, controls)


def undecided(rows, plan: Plan, seeds_now) -> List[str]:
  """The components (control all) that are undecided and could still be decided within the plan: no decision
  yet, the cap not reached, and the advice not saying that seeds cannot decide it or need more than the cap."""
  out = []
  for r in rows:
    if r["component"] == "claim" or r["control"] != effects.ALL or r["verdict"] in DECIDED:
      continue
    if r["verdict"] not in advice.UNDECIDED:
      continue
    adv = r.get("advice") or {}
    reachable = [g for g in (adv.get("goals") or {}).values()
                 if g.get("seeds") and g["seeds"][0] is not None and g["seeds"][0] <= plan.max_seeds]
    if reachable or not adv:
      out.append(f"{r['claim']}.{r['component']}")
  return out


def next_look(plan: Plan, seeds_now):
  """The seed count of the look after seeds_now (None at the cap); the loop asks only while undecided() is not
  empty."""
  return next((s for s in plan.looks if s > seeds_now), None)


def summary(rows: Sequence[dict], plan: Plan) -> List[str]:
  """A line per component (control all): its verdict, the look and seeds it was decided at, or why it is not."""
  out = [f"Looks at {', '.join(map(str, plan.looks))} seeds; two-sided levels "
         f"{', '.join(f'{x:.6g}' for x in levels(plan))} (O'Brien–Fleming spending of α = {plan.alpha:g} one-sided)."]
  for r in rows:
    if r["component"] == "claim" or r["control"] != effects.ALL:
      continue
    seq = r.get("sequential") or {}
    hist = " → ".join(f"{h['seeds']}: {h['verdict']}" for h in seq.get("history", []))
    out.append(f"{r['claim']}.{r['component']}: {r['verdict']} with {seq.get('seeds_used')} seeds ({hist})")
  return out
