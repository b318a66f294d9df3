"""The per-seed effects the claims judge, as weighted sums Σ w·y of measured values (see stats.py).

Controls decide which trials enter and with what value:
  all         usable and doubtful trials, as measured;
  trained     the trained ones among them (quality.trained_rule);
  worst_case  all, plus collapsed and diverged trials scored at their worst: clean accuracy at chance
              (1/classes), adversarial accuracy 0 (working networks are often below chance there), on n examples;
              for the eigenvalue there is no worst-case value, so that component is not applicable there.
Accuracies are fractions here; verdicts.py converts to points.
"""

import math
from typing import Dict, List

from tfrobust.report import quality

FIXED, RATIO = "fixed_lr", "constant_ratio"

ALL, TRAINED, WORST_CASE = "all", "trained", "worst_case"
CONTROLS = (ALL, TRAINED, WORST_CASE)
CONTROL_TEXT = {
    ALL: "usable and doubtful trials (collapsed, diverged and failed left out)",
    TRAINED: "trained trials only (under-trained ones left out: where each regime trains)",
    WORST_CASE: "as all, plus collapsed and diverged trials scored at their worst: clean accuracy at chance, "
                "adversarial accuracy 0 (not applicable to the eigenvalue)",
}


def value(p, metric, control):
  """(value, n examples or None, "") when point p enters `control` for `metric`, else (None, None, reason)."""
  if p.kind == quality.FAILED:
    return None, None, p.reason
  at_chance = control == WORST_CASE and p.kind in (quality.COLLAPSED, quality.DIVERGED)
  if p.kind not in quality.IN_FITS and not at_chance:
    return None, None, p.reason
  if control == TRAINED and not p.trained:
    return None, None, f"not trained: {p.trained_reason}"
  if metric == "log2_eig":
    if p.top_eig is None:
      return None, None, "no Hessian eigenvalue"
    if p.top_eig <= 0:
      return None, None, f"λ_max = {p.top_eig:.4g} ≤ 0 cannot enter the log2 fit"
    return math.log2(p.top_eig), None, ""
  n = p.n_clean if metric == "clean" else p.n_adv
  if at_chance:
    return (p.chance if metric == "clean" else 0.0), n, ""
  v = getattr(p, metric)
  if v is None:
    return None, None, f"no {'clean' if metric == 'clean' else 'adversarial'} accuracy"
  return v, n, ""


def select(points, metric, control, regimes):
  """(items, excluded): items [(point, value, n)] of the regimes that enter; excluded [{trial_id, reason}]."""
  items, excluded = [], []
  for p in points:
    if p.regime not in regimes:
      continue
    v, n, why = value(p, metric, control)
    if v is None:
      excluded.append({"trial_id": p.trial_id, "reason": why})
    else:
      items.append((p, v, n))
  return items, excluded


def _cells(items):
  """{seed: {momentum: {B: [(value, n)]}}}."""
  out: Dict[int, Dict[float, Dict[int, list]]] = {}
  for p, v, n in items:
    out.setdefault(p.seed, {}).setdefault(p.momentum, {}).setdefault(p.batch_size, []).append((v, n))
  return out


def slope_terms(items, momentum=None):
  """{seed: terms}: the least-squares slope of the value vs log2 B per momentum, averaged over the momenta of
  that seed (or for one momentum). Repeated grid points are averaged first."""
  out = {}
  for seed, by_mom in _cells(items).items():
    per_mom = []
    for mom, by_b in sorted(by_mom.items()):
      if momentum is not None and mom != momentum:
        continue
      bs = sorted(by_b)
      xs = [math.log2(b) for b in bs]
      if len(bs) < 2:
        continue
      mx = sum(xs) / len(xs)
      sxx = sum((x - mx) ** 2 for x in xs)
      per_mom.append([((x - mx) / sxx / len(by_b[b]), v, n) for x, b in zip(xs, bs) for v, n in by_b[b]])
    if per_mom:
      out[seed] = [(w / len(per_mom), v, n) for terms in per_mom for w, v, n in terms]
  return out


def momentum_terms(items, *, low, high):
  """{seed: terms}: M = mean over the B where both momenta ran of [value(μ=high) − value(μ=low)]."""
  out = {}
  for seed, by_mom in _cells(items).items():
    lo_b, hi_b = by_mom.get(low, {}), by_mom.get(high, {})
    common = sorted(set(lo_b) & set(hi_b))
    if not common:
      continue
    terms: List = []
    for b in common:
      terms += [(1.0 / len(common) / len(hi_b[b]), v, n) for v, n in hi_b[b]]
      terms += [(-1.0 / len(common) / len(lo_b[b]), v, n) for v, n in lo_b[b]]
    out[seed] = terms
  return out


def c3_terms(fixed_items, ratio_items, *, low, high):
  """{seed: terms}: E = M_fixed_lr − M_constant_ratio, for seeds with both (E > 0: momentum helps more at a
  fixed η, the claimed direction)."""
  fixed = momentum_terms(fixed_items, low=low, high=high)
  ratio = momentum_terms(ratio_items, low=low, high=high)
  return {s: fixed[s] + [(-w, v, n) for w, v, n in ratio[s]] for s in sorted(set(fixed) & set(ratio))}


def unused(items, *, c3_pair=None):
  """[{trial_id, reason}] of the items that no per-seed effect uses, so that none is dropped silently: a slope
  needs two batch sizes for the seed and momentum; C3 (c3_pair = (low, high)) needs both momenta at the same B,
  in both regimes, for the same seed."""
  out = []
  cells = _cells(items)
  if c3_pair is None:
    for p, _, _ in items:
      if len(cells[p.seed][p.momentum]) < 2:
        out.append({"trial_id": p.trial_id, "reason": f"the only batch size entering for seed {p.seed}, "
                                                      f"μ = {p.momentum:g}: no slope"})
    return out
  low, high = c3_pair
  by_regime = {}
  for p, _, _ in items:
    by_regime.setdefault(p.regime, {}).setdefault(p.seed, {}).setdefault(p.momentum, set()).add(p.batch_size)
  for p, _, _ in items:
    mine = by_regime.get(p.regime, {}).get(p.seed, {})
    other = by_regime.get(RATIO if p.regime == FIXED else FIXED, {}).get(p.seed, {})
    partner = high if p.momentum == low else low
    if p.momentum not in c3_pair:
      out.append({"trial_id": p.trial_id, "reason": f"C3 compares μ = {low:g} with μ = {high:g} only"})
    elif p.batch_size not in mine.get(partner, set()):
      out.append({"trial_id": p.trial_id, "reason": f"no μ = {partner:g} partner at B = {p.batch_size}"})
    elif not (other.get(low, set()) & other.get(high, set())):
      out.append({"trial_id": p.trial_id, "reason": f"seed {p.seed} has no momentum pair in the other regime"})
  return out


def momenta_compared(points):
  """(lowest, highest) momentum present in both claim regimes, or None."""
  sets = [{p.momentum for p in points if p.regime == r and p.kind != quality.FAILED}
          for r in ("fixed_lr", "constant_ratio")]
  common = sorted(sets[0] & sets[1])
  return (common[0], common[-1]) if len(common) >= 2 else None
