"""The effects the claims judge, as per-seed weighted sums Σ w·value of networks' measures (paired.Terms), so that
their test-set noise follows from the networks' per-example outcomes (paired.py).

  C1   per momentum: the least-squares slope of the metric against log2 B within each seed (judged), and the
       per-B contrasts [v(B) − v(B_ref)]/log2(B/B_ref) (shown);
  C2   per momentum: the per-B contrasts v(B) − v(B_ref) in accuracy points, not per doubling, every one judged
       (B_ref: the smallest B of the grid that gave a value);
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

The momenta and batch sizes judged are the grid's (sweep.json; without it, those of every trial, failed ones
included), never only those that entered: a grid momentum, or a grid B at some momentum, where no trial gave a
value is a judged part "not measured" of C1 and C2, so the component is at best inconclusive on that control, and
the B judged are stated.
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
  batch_size: Optional[int] = None  # a contrast's B, or the grid B a "not measured" part stands for
  why: str = ""  # why a part has no value


@dataclasses.dataclass(frozen=True)
class Grid:
  """The batch sizes and momenta a study set out to run, per regime: {regime: sorted tuple}."""
  batch_sizes: dict
  momenta: dict
  source: str


def grid_of(points, sweep=None):
  """The grid from sweep.json where it names batch sizes and momenta, else from every trial (failed ones too, so
  that a momentum or B whose every trial failed is still judged); results outside the grid are added."""
  sweep = sweep or {}
  regimes = sorted({p.regime for p in points} | set(sweep.get("regimes") or []))
  named = bool(sweep.get("batch_sizes") and sweep.get("momenta"))
  bs, mus = {}, {}
  for r in regimes:
    mine = [p for p in points if p.regime == r]
    bs[r] = tuple(sorted({int(b) for b in (sweep.get("batch_sizes") if named else ())} | {p.batch_size for p in mine}))
    mus[r] = tuple(sorted({round(float(m), 6) for m in (sweep.get("momenta") if named else ())}
                          | {round(p.momentum, 6) for p in mine}))
  return Grid(bs, mus, "sweep.json" if named else "every trial, failed ones included (no grid in sweep.json)")


def measure(p, metric):
  """The Measure of a point's measured value, or (None, reason). Metrics: clean, adv (at the report's ε),
  log2_eig, and adv_auc (epsfree.py: the mean robust accuracy over [0, ε_max], per example from examples.npz, so
  its test-set noise counts as an accuracy's)."""
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


def _momenta(cells, grid, regime):
  return sorted(set((grid.momenta if grid else {}).get(regime, ())) | {mu for by_mu in cells.values() for mu in by_mu})


def _batches(cells, grid, regime, mu):
  """(every B of the grid and of the data at μ, those with a value in some seed)."""
  seen = {b for by_mu in cells.values() for b in by_mu.get(mu, {})}
  return sorted(set((grid.batch_sizes if grid else {}).get(regime, ())) | seen), sorted(seen)


NO_VALUE = "no trial at this grid point gave a value on this control (failed, or left out: see excluded)"


def _missing(mu, bs, have):
  return [Quantity(f"μ = {mu:g}, B = {b}", mu, {}, batch_size=b, why=NO_VALUE) for b in bs if b not in have]


def slope_quantities(items, regime, grid=None):
  """Per momentum of the grid: the slope vs log2 B within each seed (repeated points averaged first); a grid B
  with no value at that momentum is a part of its own, not measured."""
  cells, out = _cells(items, regime), []
  for mu in _momenta(cells, grid, regime):
    bs, have = _batches(cells, grid, regime, mu)
    terms = {}
    for seed, by_mu in sorted(cells.items()):
      by_b = by_mu.get(mu, {})
      if len(by_b) < 2:
        continue
      xs = [math.log2(b) for b in sorted(by_b)]
      mx = sum(xs) / len(xs)
      sxx = sum((x - mx) ** 2 for x in xs)
      terms[seed] = [t for x, b in zip(xs, sorted(by_b)) for t in _mean_terms(by_b[b], (x - mx) / sxx)]
    out.append(Quantity(f"μ = {mu:g}", mu, terms, why="" if terms else NO_VALUE))
    out += [] if not terms else _missing(mu, bs, have)
  return out


def contrast_quantities(items, regime, *, judged, per_doubling, grid=None):
  """Per momentum of the grid and B > B_ref (the smallest B with a value): v(B) − v(B_ref) within each seed that
  has both, divided by log2(B/B_ref) when per_doubling. Judged: a grid B without a value (B_ref's included) is a
  part of its own, not measured; a momentum without a value one part "μ = …"."""
  cells, out = _cells(items, regime), []
  for mu in _momenta(cells, grid, regime):
    bs, have = _batches(cells, grid, regime, mu)
    if not have:
      out += [Quantity(f"μ = {mu:g}", mu, {}, judged, why=NO_VALUE)] if judged else []
      continue
    ref = have[0]
    for b in bs:
      if b <= ref:
        out += _missing(mu, [b], have) if judged and b < ref else []
        continue
      d = math.log2(b / ref) if per_doubling else 1.0
      terms = {s: _mean_terms(by_mu[mu][b], 1 / d) + _mean_terms(by_mu[mu][ref], -1 / d)
               for s, by_mu in sorted(cells.items()) if b in by_mu.get(mu, {}) and ref in by_mu.get(mu, {})}
      if terms or judged:
        out.append(Quantity(f"μ = {mu:g}, B = {b} vs {ref}", mu, terms, judged, b, "" if terms else NO_VALUE))
  return out


def batch_note(items, regime, grid=None):
  """The B judged per momentum, in words, naming the grid B with no value."""
  cells, out = _cells(items, regime), []
  for mu in _momenta(cells, grid, regime):
    bs, have = _batches(cells, grid, regime, mu)
    gone = [b for b in bs if b not in have]
    out.append(f"μ = {mu:g}: B = {', '.join(map(str, have)) or 'none'}"
               + (f" (no value at B = {', '.join(map(str, gone))})" if gone else ""))
  return "B judged: " + "; ".join(out) if out else ""


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


def momenta_compared(points, grid=None):
  """(lowest, highest) momentum of both claim regimes, from the grid (a momentum whose trials all failed is
  still compared: C3 then has no value), or None."""
  grid = grid or grid_of(points)
  common = sorted(set(grid.momenta.get(FIXED, ())) & set(grid.momenta.get(RATIO, ())))
  return (common[0], common[-1]) if len(common) >= 2 else None


def quantities(comp, items, pair, grid=None):
  """(quantities, note) of one component from its entering items (every Measure already valued)."""
  if comp.claim == "C1":
    qs = slope_quantities(items, FIXED, grid) + contrast_quantities(items, FIXED, judged=False, per_doubling=True,
                                                                     grid=grid)
    return qs, batch_note(items, FIXED, grid)
  if comp.claim == "C2":
    qs = contrast_quantities(items, RATIO, judged=True, per_doubling=False, grid=grid)
    return qs, batch_note(items, RATIO, grid)
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


def resolve_adverse(comp, items, pair, grid=None):
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
      options.append((_against(comp, quantities(comp, trial, pair, grid)[0]), name, v))
    _, name, v = max(options, key=lambda o: o[0])
    done.append((p, Measure(v, metric=comp.metric)))
    scored.append({"trial_id": p.trial_id, "scored": f"{name}, {100 * v:.1f}%"})
  return done, scored


def unused(items, qs) -> List[dict]:
  """[{trial_id, reason}] of entering trials that no judged quantity uses, so that none is dropped silently."""
  used = {id(m) for q in qs if q.judged for ts in q.terms.values() for m, _ in ts}
  return [{"trial_id": p.trial_id, "reason": "no judged effect can use it (no partner at its seed, B or momentum)"}
          for p, m in items if id(m) not in used]
