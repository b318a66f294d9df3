"""What an undecided component needs to be decided: seeds, or test examples where seeds cannot help, and the cost.

A judged part's interval (paired.Interval) is made of three variances: the seeds' true spread σ² (what s² holds
beyond each network's own test-set noise), each seed's own test-set variance V_own and the shared test-set
variance V_shared; the last two scale as 1/n with the test examples n, the first does not. At S seeds and n
examples (r = n/n₀) the estimate's SE² = (σ² + V_own/r)/S + V_shared/r, and the interval's half-width is
paired.half_width with s² = σ² + V_own/r and the family's multipliers recomputed at S (paired.family_t). Power is
then P(verdict) for a normal estimate around a true effect:

  a directional claim (C1, C3), supported at a true effect of POWER_AT × margin: Φ((δ − margin − h)/SE);
  an equivalence (C2, C4), supported at a true effect of 0: 2Φ((margin − h)/SE) − 1, and contradicted at
      POWER_AT × margin: Φ((δ − margin − h)/SE).

A component is decided only when every judged part is (support) or, for contradiction, when its largest part is:
support's power is the product over the parts (joint power), contradiction's the largest part's. Where the power at
infinitely many seeds (SE → √V_shared) stays below POWER, no number of seeds can decide the component with this
test set; the advice then gives the test examples that would, at a few seed counts. σ from S − 1 degrees of
freedom is uncertain (at 3 seeds its upper 80% bound is 2.1 × s), so seeds are quoted as a range: from s and from
that bound. A decided component gets no advice: power computed after the fact says nothing more.
"""

import math
from typing import List, Optional, Sequence

import numpy as np
from scipy import stats as sp_stats

from tfrobust.report import claims, paired

POWER, POWER_AT = 0.8, 2.0  # 80% power at 2 × the margin (directional), at 0 (equivalence support)
MAX_SEEDS = 200
SEED_COUNTS = (6, 10, 20)  # where seeds cannot help: the test examples needed at these seed counts
SIGMA_BOUND = 0.8  # the upper confidence bound of σ used for the upper end of the seeds range
UNDECIDED = (claims.INCONCLUSIVE, claims.DIRECTION_ONLY)
_INF_SEEDS = 10 ** 6


def sigma_upper(sd, n_seeds, level=SIGMA_BOUND):
  """The upper `level` confidence bound of a normal sd estimated as `sd` from n_seeds values."""
  if n_seeds < 2:
    return sd
  return sd * math.sqrt((n_seeds - 1) / sp_stats.chi2.ppf(1 - level, n_seeds - 1))


def _parts_of(iv: paired.Interval, sd_seed):
  """(σ², V_own, V_shared) of a part, σ² from an sd of the per-seed effects."""
  own = (iv.sd_own or 0.0) ** 2
  return max(sd_seed ** 2 - own, 0.0), own, (iv.sd_shared or 0.0) ** 2


def power(kind, goal, ivs: Sequence[paired.Interval], margin, n_seeds, ratio=1.0, upper=False):
  """The power of `goal` ("support" or "contradict") at n_seeds seeds (a number or an array) and ratio × the test
  examples."""
  s = np.atleast_1d(np.asarray(n_seeds, dtype=np.float64))
  out = []
  for iv in ivs:
    sd = sigma_upper(iv.sd_seed, iv.n_seeds) if upper else iv.sd_seed
    sigma2, own, shared = _parts_of(iv, sd)
    own, shared = own / ratio, shared / ratio
    qz = iv.q_shared or paired.Z
    qt = np.where(s < _INF_SEEDS, paired.family_t(qz, s), qz)
    se = np.sqrt((sigma2 + own) / s + shared)
    h = paired.half_width(math.sqrt(sigma2 + own), math.sqrt(own), math.sqrt(shared), s, qt, qz)
    with np.errstate(divide="ignore", invalid="ignore"):
      if goal == "support" and kind == claims.EQUIVALENT:
        p = np.maximum(0.0, 2 * sp_stats.norm.cdf((margin - h) / se) - 1)
      else:
        p = sp_stats.norm.cdf(((POWER_AT - 1) * margin - h) / se)
    out.append(np.where(se > 0, p, (h < margin).astype(float)))
  res = np.prod(out, axis=0) if goal == "support" else np.max(out, axis=0)
  return res if np.ndim(n_seeds) else float(res[0])


_CANDIDATES = np.arange(max(claims.MIN_SEEDS, 2), MAX_SEEDS + 1)


def seeds_needed(kind, goal, ivs, margin, upper=False) -> Optional[int]:
  """The fewest seeds (3 … MAX_SEEDS) with power ≥ POWER; None beyond MAX_SEEDS."""
  ok = power(kind, goal, ivs, margin, _CANDIDATES, upper=upper) >= POWER
  return int(_CANDIDATES[ok.argmax()]) if ok.any() else None


def examples_needed(kind, goal, ivs, margin, n_seeds) -> Optional[int]:
  """The fewest test examples with power ≥ POWER at n_seeds seeds (None: seeds' own spread forbids it)."""
  n0 = min(iv.n_examples or 0 for iv in ivs) or None
  if n0 is None or power(kind, goal, ivs, margin, n_seeds, ratio=1e6) < POWER:
    return None
  lo, hi = 1.0, 2.0
  while power(kind, goal, ivs, margin, n_seeds, ratio=hi) < POWER:
    lo, hi = hi, hi * 2
  for _ in range(40):
    mid = (lo + hi) / 2
    lo, hi = (lo, mid) if power(kind, goal, ivs, margin, n_seeds, ratio=mid) >= POWER else (mid, hi)
  return int(math.ceil(n0 * hi))


def variance_shares(iv: paired.Interval):
  """The interval's variance at its seeds, split: {"seeds", "own test set", "shared test set"} (report units²)."""
  sigma2, own, shared = _parts_of(iv, iv.sd_seed)
  return {"seeds": sigma2 / iv.n_seeds, "own test set": own / iv.n_seeds, "shared test set": shared}


def _goals(kind):
  return ("support", "contradict") if kind == claims.EQUIVALENT else ("support",)


def advise(comp, verdict, parts: List[dict], ivs: List[paired.Interval], margin, *, trials_per_seed=None,
           trial_seconds=None) -> Optional[dict]:
  """The advice of one undecided component (None when decided or not judged): per goal the seeds needed as a
  range, or that seeds cannot decide it and the test examples that would, the limiting part and the cost."""
  if verdict not in UNDECIDED:
    return None
  judged = [(p, iv) for p, iv in zip(parts, ivs) if iv.se is not None and p["judged"]]
  if not judged or len(judged) < sum(1 for p in parts if p["judged"]):
    return None  # a part without an interval (not measured): seeds of that cell are missing, not more seeds
  kind = comp.kind
  now = ivs[0].n_seeds
  goals = {}
  for goal in _goals(kind):
    ivs_j = [iv for _, iv in judged]
    never = power(kind, goal, ivs_j, margin, _INF_SEEDS) < POWER
    at = [power(kind, goal, [iv], margin, _INF_SEEDS if never else max(now, 2)) for iv in ivs_j]
    worst = int(np.argmin(at)) if goal == "support" else int(np.argmax(at))
    limiting = judged[worst]
    g = {"power_now": power(kind, goal, ivs_j, margin, max(now, 2)), "part": limiting[0]["name"],
         "variance": variance_shares(limiting[1]), "test_examples": limiting[1].n_examples}
    if never:
      g["seeds"] = None
      g["examples_needed"] = {s: examples_needed(kind, goal, ivs_j, margin, s) for s in SEED_COUNTS}
    else:
      lo, hi = seeds_needed(kind, goal, ivs_j, margin), seeds_needed(kind, goal, ivs_j, margin, upper=True)
      g["seeds"] = [lo, hi]
      if trials_per_seed and lo is not None:
        g["trials"] = [trials_per_seed * lo, None if hi is None else trials_per_seed * hi]
        if trial_seconds:
          g["hours"] = [x * trial_seconds / 3600 if x is not None else None for x in g["trials"]]
    goals[goal] = g
  return {"goals": goals, "text": text(kind, goals)}


def _range(lo, hi, cap=MAX_SEEDS):
  if lo is None:
    return f"> {cap}"
  if hi is None:
    return f"{lo} to > {cap}"
  return str(lo) if lo == hi else f"{lo}–{hi}"


def _goal_text(kind, goal, g):
  what = ("support (true effect 0)" if kind == claims.EQUIVALENT else
          f"support (true effect {POWER_AT:g} × margin)") if goal == "support" else \
      f"contradict (true effect {POWER_AT:g} × margin)"
  v = g["variance"]
  total = sum(v.values()) or 1.0
  split = ", ".join(f"{k} {100 * x / total:.0f}%" for k, x in v.items())
  head = f"to {what}, limited by {g['part']} (variance: {split})"
  if g["seeds"] is None:
    n = g.get("test_examples")
    need = ", ".join(f"{x} at {s} seeds" if x else f"no test-set size at {s} seeds (the seeds' spread is too large)"
                     for s, x in g["examples_needed"].items())
    return (f"{head}: never by seeds with this test set ({n} examples: the test-set noise alone leaves less than "
            f"{100 * POWER:.0f}% power); test examples needed: {need}")
  out = f"{head}: {_range(*g['seeds'])} seeds for {100 * POWER:.0f}% power"
  if g.get("trials"):
    out += f" ({_range(*g['trials'], cap=g['trials'][0] // g['seeds'][0] * MAX_SEEDS)} trials"
    if g.get("hours"):
      lo, hi = g["hours"]
      out += f", {lo:.1f}" + ("" if hi is None or f"{hi:.1f}" == f"{lo:.1f}" else f"–{hi:.1f}") + " h"
    out += ")"
  return out


def text(kind, goals):
  """One line: what the component needs, per goal."""
  return "; ".join(_goal_text(kind, goal, g) for goal, g in goals.items())


def rule():
  """The advice rule in words (report.md)."""
  return (f"**What an undecided component needs.** Each undecided component states, for its limiting part, how its "
          f"interval's variance splits into seeds, each network's own test-set noise and the shared test-set noise, "
          f"and how many seeds give {100 * POWER:.0f}% power to decide it: to support a directional claim at a true "
          f"effect of {POWER_AT:g} × the margin (every part at once), to support an equivalence at a true effect of "
          f"0 and to contradict it at {POWER_AT:g} × the margin, with the family multipliers recomputed at each "
          f"seed count. The range runs from the observed seed spread to its upper {100 * SIGMA_BOUND:.0f}% "
          "confidence bound; the cost is in trials and in hours at the study's median trial time. Where even "
          "infinitely many seeds leave too little power (the shared test-set part, which shrinks only with more "
          f"test examples), it says so and gives the test examples needed at {', '.join(map(str, SEED_COUNTS))} "
          "seeds. Decided components get no such number.")


def short(adv) -> str:
  """The table cell: seeds per goal, or the test examples where seeds cannot help; "—" when decided."""
  if not adv:
    return "—"
  cells = []
  for goal, g in adv["goals"].items():
    if g["seeds"] is None:
      first = next(((s, x) for s, x in g["examples_needed"].items() if x), None)
      cell = ("never by seeds: " + (f"{first[1]} test examples at {first[0]} seeds" if first
                                    else "more seeds and test examples"))
    else:
      cell = f"{_range(*g['seeds'])} seeds"
    cells.append(f"{goal}: {cell}" if len(adv["goals"]) > 1 else cell)
  return "; ".join(cells)
