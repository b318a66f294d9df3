"""The effects the claims judge, as per-seed weighted sums Σ w·value of networks' measures (paired.Terms), so that
the paired bootstrap can recompute them from resampled test examples.

  C1   per momentum: the least-squares slope of the metric against log2 B within each seed (judged), and the
       per-B contrasts [v(B) − v(B_ref)]/log2(B/B_ref) (shown);
  C2   per momentum: those per-B contrasts, every one judged (B_ref: the smallest B that entered);
  C3   per seed: the mean over the B where all four cells (2 regimes × 2 momenta) exist of the difference in
       differences [v(fixed, μ_hi) − v(fixed, μ_lo)] − [v(ratio, μ_hi) − v(ratio, μ_lo)], so both regimes are
       compared over the same batch sizes;
  C4   per seed: the coefficients of log2 B and μ in the least-squares regression of the metric on a quadratic in
       log2 T plus log2 B and μ, T = η/(B(1−μ)), over every regime (temperature.py).

Controls decide which trials enter and with what value:
  all       usable and doubtful trials, as measured;   usable   doubtful ones out as well;
  trained   the trained ones among all (quality.trained_rule);
  adverse   all, plus collapsed and diverged trials each scored at whichever end goes against the claim under
            test: the low end (clean accuracy at chance, adversarial accuracy 0) or the best value observed in its
            cell (same regime, B and μ; of its regime and momentum where the whole cell failed); not
            applicable to the eigenvalue.
"""

import dataclasses
import math
from typing import List, Optional

from tfrobust.report import claims, quality, temperature
from tfrobust.report.paired import Measure

FIXED, RATIO = claims.FIXED, claims.RATIO
ALL, USABLE, TRAINED, ADVERSE = "all", "usable", "trained", "adverse"
CONTROLS = (ALL, USABLE, TRAINED, ADVERSE)
CONTROL_TEXT = {
    ALL: "usable and doubtful trials (collapsed, diverged and failed left out)",
    USABLE: "usable trials only (doubtful ones left out as well)",
    TRAINED: "trained trials only (under-trained ones left out: where each regime trains)",
    ADVERSE: "as all, plus each collapsed or diverged trial scored at whichever end goes against the claim under "
             "test: the low end (clean accuracy at chance, adversarial accuracy 0) or the best value observed in "
             "its cell (same regime, B and μ; where the whole cell failed, of its regime and momentum) (not "
             "applicable to the eigenvalue)",
}


@dataclasses.dataclass
class Quantity:
  name: str
  momentum: Optional[float]
  terms: dict  # paired.Terms
  judged: bool = True


def measure(p, metric):
  """The Measure of a point's measured value, or (None, reason). Metrics: clean, adv (at the report's ε),
  log2_eig, and adv_auc (epsfree.py: the mean robust accuracy over [0, ε_max], per example from examples.npz, so
  the paired bootstrap resamples it as it does an accuracy)."""
  if metric == "adv_auc":
    if p.eps_free is None:
      return None, "no per-example attack curve (examples.npz) for the area under the robust-accuracy curve"
    return Measure(p.eps_free.auc, correct=p.eps_free.auc_ex, metric=metric), ""
  if metric == "log2_eig":
    if p.top_eig is None:
      return None, "no Hessian eigenvalue"
    if p.top_eig <= 0:
      return None, f"λ_max = {p.top_eig:.4g} ≤ 0 cannot enter the log2 fit"
    return Measure(math.log2(p.top_eig), metric=metric), ""
  v = p.clean if metric == "clean" else p.adv
  if v is None:
    return None, f"no {'clean' if metric == 'clean' else 'adversarial'} accuracy"
  ex = p.clean_ex if metric == "clean" else p.adv_ex
  n = p.n_clean if metric == "clean" else p.n_adv
  return Measure(v, correct=ex, n=None if ex is not None else n, metric=metric), ""


def select(points, metric, control, regimes):
  """(items, excluded): items [(point, Measure or None)] that enter (None: an adverse point, valued later);
  excluded [{trial_id, reason}]."""
  items, excluded = [], []
  for p in points:
    if p.regime not in regimes:
      continue
    why = ""
    if control == ADVERSE and p.kind in (quality.COLLAPSED, quality.DIVERGED) and metric != "log2_eig":
      items.append((p, None))
      continue
    if p.kind not in quality.IN_FITS:
      why = p.reason
    elif control == USABLE and p.kind != quality.USABLE:
      why = p.reason
    elif control == TRAINED and not p.trained:
      why = f"not trained: {p.trained_reason}"
    m = None
    if not why:
      m, why = measure(p, metric)
    if m is None:
      excluded.append({"trial_id": p.trial_id, "reason": why})
    else:
      items.append((p, m))
  return items, excluded


def _cells(items, regime=None):
  """{seed: {momentum: {B: [Measure]}}}."""
  out = {}
  for p, m in items:
    if regime is None or p.regime == regime:
      out.setdefault(p.seed, {}).setdefault(p.momentum, {}).setdefault(p.batch_size, []).append(m)
  return out


def _mean_terms(ms, w):
  return [(m, w / len(ms)) for m in ms]


def slope_quantities(items, regime):
  """Per momentum: the slope vs log2 B within each seed (repeated points averaged first)."""
  cells, out = _cells(items, regime), []
  for mu in sorted({mu for by_mu in cells.values() for mu in by_mu}):
    terms = {}
    for seed, by_mu in sorted(cells.items()):
      by_b = by_mu.get(mu, {})
      if len(by_b) < 2:
        continue
      xs = [math.log2(b) for b in sorted(by_b)]
      mx = sum(xs) / len(xs)
      sxx = sum((x - mx) ** 2 for x in xs)
      terms[seed] = [t for x, b in zip(xs, sorted(by_b)) for t in _mean_terms(by_b[b], (x - mx) / sxx)]
    out.append(Quantity(f"μ = {mu:g}", mu, terms))
  return out


def contrast_quantities(items, regime, *, judged):
  """Per momentum and B > B_ref: [v(B) − v(B_ref)]/log2(B/B_ref) within each seed that has both."""
  cells, out = _cells(items, regime), []
  for mu in sorted({mu for by_mu in cells.values() for mu in by_mu}):
    bs = sorted({b for by_mu in cells.values() for b in by_mu.get(mu, {})})
    if len(bs) < 2:
      continue
    ref = bs[0]
    for b in bs[1:]:
      d = math.log2(b / ref)
      terms = {s: _mean_terms(by_mu[mu][b], 1 / d) + _mean_terms(by_mu[mu][ref], -1 / d)
               for s, by_mu in sorted(cells.items()) if b in by_mu.get(mu, {}) and ref in by_mu.get(mu, {})}
      out.append(Quantity(f"μ = {mu:g}, B = {b} vs {ref}", mu, terms, judged))
  return out


def did_quantity(items, pair):
  """C3: per seed, the mean over its complete B of the difference in differences; and the B used, in words."""
  lo, hi = pair
  fixed, ratio = _cells(items, FIXED), _cells(items, RATIO)
  terms, used = {}, {}
  for s in sorted(set(fixed) & set(ratio)):
    cells = [fixed[s].get(hi, {}), fixed[s].get(lo, {}), ratio[s].get(hi, {}), ratio[s].get(lo, {})]
    common = sorted(set.intersection(*(set(c) for c in cells)))
    if not common:
      continue
    used[s] = common
    terms[s] = [t for b in common for c, sign in zip(cells, (1, -1, -1, 1))
                for t in _mean_terms(c[b], sign / len(common))]
  ranges = sorted({tuple(v) for v in used.values()})
  text = "; ".join(f"B = {', '.join(map(str, r))}" + ("" if len(ranges) == 1 else
                   f" (seed {', '.join(str(s) for s in used if tuple(used[s]) == r)})") for r in ranges)
  return Quantity(f"E over {text or 'no B'}", None, terms), text


def momenta_compared(points):
  """(lowest, highest) momentum present in both claim regimes, or None."""
  sets = [{p.momentum for p in points if p.regime == r and p.kind != quality.FAILED} for r in (FIXED, RATIO)]
  common = sorted(sets[0] & sets[1])
  return (common[0], common[-1]) if len(common) >= 2 else None


def quantities(comp, items, pair):
  """(quantities, note) of one component from its entering items (every Measure already valued)."""
  if comp.claim == "C1":
    return slope_quantities(items, FIXED) + contrast_quantities(items, FIXED, judged=False), ""
  if comp.claim == "C2":
    return contrast_quantities(items, RATIO, judged=True), ""
  if comp.claim == "C4":
    terms, note = temperature.extra_terms(items)
    return [Quantity(name, None, t) for name, t in terms], note
  if pair is None:
    return [], "needs two momenta in both fixed_lr and constant_ratio"
  q, text = did_quantity(items, pair)
  return [q], f"B used: {text}" if text else "no B where both regimes ran both momenta"


def point_estimate(q):
  vals = [sum(w * m.value for m, w in ts) for ts in q.terms.values()]
  return sum(vals) / len(vals) if vals else None


def _against(comp, qs):
  """How far the judged estimates lean against the claim (larger: more against), to choose an adverse end."""
  ests = [point_estimate(q) for q in qs if q.judged]
  ests = [e for e in ests if e is not None]
  if not ests:
    return 0.0
  if comp.kind == claims.EQUIVALENT:
    return sum(abs(e) for e in ests)
  return -sum(claims._DIRECTION[comp.kind] * e for e in ests)  # pylint: disable=protected-access


def resolve_adverse(comp, items, pair):
  """items with every adverse point (Measure None) valued at the end that goes against the claim, point by point
  in a fixed order; [(trial_id, reason)] of what each was scored."""
  best = {}
  for p, m in items:
    if m is not None:
      for k in ((p.regime, p.batch_size, p.momentum), (p.regime, None, p.momentum)):
        best[k] = max(best.get(k, -math.inf), m.value)
  done = [(p, m) for p, m in items if m is not None]
  scored = []
  for p, _ in sorted(((p, m) for p, m in items if m is None), key=lambda it: it[0].trial_id):
    low = p.chance if comp.metric == "clean" else 0.0
    ends = [("the low end", low)]
    for k, name in (((p.regime, p.batch_size, p.momentum), "the best of its cell"),
                    ((p.regime, None, p.momentum), "the best of its regime and momentum")):
      if k in best:
        ends.append((name, best[k]))
        break
    options = []
    for name, v in ends:
      trial = done + [(p, Measure(v, metric=comp.metric))]
      options.append((_against(comp, quantities(comp, trial, pair)[0]), name, v))
    _, name, v = max(options, key=lambda o: o[0])
    done.append((p, Measure(v, metric=comp.metric)))
    scored.append({"trial_id": p.trial_id, "scored": f"{name}, {100 * v:.1f}%"})
  return done, scored


def unused(items, qs) -> List[dict]:
  """[{trial_id, reason}] of entering trials that no judged quantity uses, so that none is dropped silently."""
  used = {id(m) for q in qs if q.judged for ts in q.terms.values() for m, _ in ts}
  return [{"trial_id": p.trial_id, "reason": "no judged effect can use it (no partner at its seed, B or momentum)"}
          for p, m in items if id(m) not in used]
