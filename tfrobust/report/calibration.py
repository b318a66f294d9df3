"""Operating characteristics of the verdict rules, measured: studies with a known truth are made up, judged by the
real report code (verdicts.judge), and per component, true effect and seed count the table gives P(supported),
P(against), the coverage of the 95% intervals (jointly for a simultaneous family), each with its Clopper–Pearson
95% bound, and the power beside them. `python -m tfrobust.calibrate` writes it into docs/verdicts.md.

Two sources of studies, both with every component's true effect at truth × its margin (TRUTHS) and SEED_COUNTS
seeds:

  synthetic  (synthetic_study.Synthetic) the grid of a real study — 2 regimes × B = 16…256 × μ ∈ {0, 0.9} — with a network's
             true accuracy drawn from a Beta around its cell's accuracy (the seed effect: never outside [0, 1]) and
             its per-example outcomes from a Gaussian copula (example i is right when √ρ·z_i + √(1−ρ)·e_ik <
             Φ⁻¹(p_k), z_i shared by every network); ρ, the seed sd and the levels from a study (noise_of), a
             fresh test set per simulated study.
  real noise (pseudo_study.RealNoise) networks of a study trained at one cell's hyperparameters under many
             seeds, relabelled into the cells of a pseudo-study (never the same network twice in one), with the
             effect injected by flipping a known number of each network's right examples to wrong: the real
             examples, ties, ceilings and between-network agreement are kept.

The truth of each judged part is its estimand evaluated at the cells' true mean accuracies (effects.quantities
on a noiseless study), so C1's slope, C2's contrasts, C3's difference in differences and C4's regression terms
are compared with exactly what their intervals estimate. A claim is false where its truth is at or below the
margin (directional: C1, C3) or at or above it (equivalence: C2, C4); the goals, on the Clopper–Pearson bounds:
P(supported | claim false) ≤ 5% and coverage ≥ 93% in every cell.
"""

import math
import time
from typing import Callable, Dict, Optional

import numpy as np
from scipy import stats as sp_stats

from tfrobust.report import claims, effects, sequential, verdicts

CALIBRATION_START = "<!-- calibration:start -->"
CALIBRATION_END = "<!-- calibration:end -->"
TRUTHS = (0.0, 0.5, 1.0, 2.0)  # true effect in margins
SEED_COUNTS = (3, 6, 12, 24)
LEVEL = 0.95
GOAL_SUPPORTED, GOAL_COVERAGE = 0.05, 0.93
BATCHES, MOMENTA = (16, 32, 64, 128, 256), (0.0, 0.9)
FULL_GRID = tuple((r, b, m) for r in (effects.FIXED, effects.RATIO) for m in MOMENTA for b in BATCHES)


def clopper_pearson(k, n, level=LEVEL):
  """(lower, upper) two-sided Clopper–Pearson bounds of a proportion k/n."""
  a = (1 - level) / 2
  lo = 0.0 if k == 0 else float(sp_stats.beta.ppf(a, k, n - k + 1))
  hi = 1.0 if k == n else float(sp_stats.beta.ppf(1 - a, k + 1, n - k))
  return lo, hi


def shifts(comp, truth, margins, cell):
  """(Δ accuracy as a fraction, Δ log2 λ_max) that a cell (regime, B, μ) gets so that `comp`'s true effect is
  truth × its margin: C1 slopes per doubling of B at fixed η; C2 a straight drop in log2 B whose largest contrast
  (B = 256 against 16) is the margin; C3 momentum's gain at fixed η larger by the margin (μ = 0 at fixed η lower);
  C4 a B term at fixed T (accuracies fall, λ_max rises). Accuracies only ever fall: a real network's right
  examples can be flipped to wrong."""
  regime, b, mu = cell
  d = math.log2(b / BATCHES[0])
  m = margins[comp.margin] * truth
  if comp.claim in ("C1", "C4"):
    if comp.claim == "C1" and regime != effects.FIXED:
      return 0.0, 0.0
    return (-m / 100 * d, 0.0) if comp.metric != "log2_eig" else (0.0, m * d)
  if comp.claim == "C2":
    return (-m / 100 * d / math.log2(BATCHES[-1] / BATCHES[0]) if regime == effects.RATIO else 0.0), 0.0
  return (-m / 100 if regime == effects.FIXED and mu == MOMENTA[0] else 0.0), 0.0


def lr_of(regime, b, noise):
  return noise.lr if regime == effects.FIXED else noise.lr * b / noise.base_batch_size


def group_shifts(comps, truth, margins, cell):
  """{metric: Δ accuracy}, Δ log2 λ_max of a cell with every component of a group at truth × its margin (the
  components of one study never move each other's estimand: C1's slopes, C2's ratio contrasts and C3's
  difference in differences are orthogonal on the grid)."""
  acc, eig = {"clean": 0.0, "adv": 0.0}, 0.0
  for comp in comps:
    da, de = shifts(comp, truth, margins, cell)
    if comp.metric == "log2_eig":
      eig += de
    else:
      acc[comp.metric] += da
  return acc, eig


def true_parts(comp, cells, levels, eig_levels, noise, pair):
  """{part name: truth} of a design whose cells have true mean accuracies `levels` ({cell: {metric: p}}) and log2
  λ_max `eig_levels`: the part's estimand evaluated on a noiseless study (effects.quantities)."""
  points = []
  metric = "adv" if comp.metric == "adv" else "clean"
  for s in (0, 1):
    for c in cells:
      r, b, mu = c
      points.append(verdicts.Observation(r, b, mu, s, levels[c][metric], levels[c][metric], 2.0 ** eig_levels[c],
                                         trial_id=f"{c}-{s}", n_clean=1, n_adv=1, lr_used=lr_of(r, b, noise)))
  items, _ = effects.select(points, comp.metric, effects.ALL, comp.regimes)
  qs, _ = effects.quantities(comp, items, pair, effects.grid_of(points))
  scale = 1.0 if comp.metric == "log2_eig" else 100.0
  return {q.name: effects.point_estimate(q) * scale for q in qs if q.judged and q.terms}


def _cell_job(args):
  """One (source, group, seeds, truth) cell of the table: its tallies per component (a process pool's unit)."""
  source, group, seeds, t, replicates, seed, wanted = args
  margins = verdicts.margins()
  pair = (MOMENTA[0], MOMENTA[-1])
  comps = [c for c in verdicts.COMPONENTS if c.claim in source.groups[group]]
  cells = source.design(group)
  levels, eigs = {}, {}
  for c in cells:
    levels[c], eigs[c] = source.cell_truth(comps, t, margins, c)
  judged = [c for c in comps if wanted is None or f"{c.claim}.{c.name}" in wanted]
  truth = {c: true_parts(c, cells, levels, eigs, source.noise, pair) for c in judged}
  tallies = {c: dict(supported=0, against=0, inconclusive=0, covered=0, intervals=0, joint=0, families=0, n=0)
             for c in judged}
  plan = seeds if isinstance(seeds, sequential.Plan) else None
  for r in range(replicates):
    rng = np.random.default_rng([seed, int(t * 100), plan.max_seeds if plan else seeds, r, 1 if plan else 0,
                                 sum(map(ord, group))])
    points = source.study(comps, t, margins, plan.max_seeds if plan else seeds, rng)
    for c in judged:
      if plan is None:
        row = verdicts.judge(c, points, effects.ALL, margins[c.margin], pair=pair, with_advice=False, shown=False)
      else:
        row = _sequential_row(c, points, plan, margins, pair)
        tallies[c].setdefault("seeds_used", []).append(row["seeds_used"])
      _count(tallies[c], c, row, truth[c])
  return group, seeds, t, {f"{c.claim}.{c.name}": v for c, v in tallies.items()}


def _sequential_row(comp, points, plan, margins, pair):
  """The component's row at its stopping look of a sequential study (sequential.py): the first look whose verdict
  is a decision, else the cap's; seeds_used added."""
  row = None
  for seeds, level in zip(plan.looks, sequential.levels(plan)):
    subset = [p for p in points if p.seed < seeds]
    row = verdicts.judge(comp, subset, effects.ALL, margins[comp.margin], pair=pair, with_advice=False, level=level,
                         shown=False)
    if row["verdict"] in sequential.DECIDED:
      break
  return dict(row, seeds_used=seeds)


def run(source, replicates=400, *, truths=TRUTHS, seed_counts=SEED_COUNTS, components=None, seed=0, processes=1,
        progress: Optional[Callable] = None):
  """{component: {seeds: {truth: cell}}} and the seconds taken; a cell counts supported, against, inconclusive,
  and the intervals and families covering their truth over `replicates` studies. Seed counts whose design needs
  more networks than the source has are left out."""
  jobs = []
  for group, claims_of in source.groups.items():
    comps = [c for c in verdicts.COMPONENTS if c.claim in claims_of]
    if components is not None and not any(f"{c.claim}.{c.name}" in components for c in comps):
      continue
    for seeds in seed_counts:
      cap = source.capacity(group)
      most = seeds.max_seeds if isinstance(seeds, sequential.Plan) else seeds
      if cap is not None and most * len(source.design(group)) > cap:
        continue
      jobs += [(source, group, seeds, t, replicates, seed, components) for t in truths]
  start = time.time()
  table: Dict[str, Dict[int, Dict[float, dict]]] = {}
  if processes > 1:
    import multiprocessing  # pylint: disable=import-outside-toplevel
    with multiprocessing.get_context("fork").Pool(processes) as pool:
      results = pool.imap(_cell_job, jobs)
      results = list(_each(results, progress))
  else:
    results = list(_each(map(_cell_job, jobs), progress))
  for group, seeds, t, tallies in results:
    for key, tally in tallies.items():
      table.setdefault(key, {}).setdefault(seeds, {})[t] = tally
  order = [f"{c.claim}.{c.name}" for c in verdicts.COMPONENTS]
  table = {k: {s: dict(sorted(by.items())) for s, by in sorted(table[k].items(), key=lambda kv: _seed_order(kv[0]))}
           for k in order if k in table}
  return table, time.time() - start


def _seed_order(seeds):
  return (1, seeds.max_seeds) if isinstance(seeds, sequential.Plan) else (0, seeds)


def _each(results, progress):
  for res in results:
    if progress:
      progress(*res[:3])
    yield res


def _count(tally, comp, row, truth):
  tally["n"] += 1
  vote = claims.vote(row["verdict"])
  tally[{claims.SUPPORTED: "supported", claims.NOT_SUPPORTED: "against"}.get(vote, "inconclusive")] += 1
  families = {}
  for part in row["parts"]:
    if part["ci"] is not None and part["judged"] and part["name"] in truth:
      hit = part["ci"][0] <= truth[part["name"]] <= part["ci"][1]
      tally["intervals"] += 1
      tally["covered"] += hit
      families.setdefault(part["momentum"], []).append(hit)
  if comp.kind == claims.EQUIVALENT:  # a simultaneous family per momentum (C2) or one (C4)
    tally["families"] += len(families)
    tally["joint"] += sum(all(f) for f in families.values())


def claim_false(kind, truth):
  return truth >= 1.0 if kind == claims.EQUIVALENT else truth <= 1.0


def power_truth(kind):
  """The truth at which P(supported) is the power: 0 for an equivalence, 2 × the margin for a directional claim."""
  return 0.0 if kind == claims.EQUIVALENT else 2.0


def goals(table):
  """[(component, seeds, problem)] where a Clopper–Pearson bound misses a goal: the upper bound of P(supported)
  above 5% where the claim is false, or the upper bound of the coverage (joint for a family) below 93%."""
  kinds = {f"{c.claim}.{c.name}": c.kind for c in verdicts.COMPONENTS}
  bad = []
  for comp, by_seeds in table.items():
    for seeds, by in by_seeds.items():
      for t, c in by.items():
        if claim_false(kinds[comp], t):
          hi = clopper_pearson(c["supported"], c["n"])[1]
          if hi > GOAL_SUPPORTED:
            bad.append((comp, seeds, f"P(supported | truth {t:g}× margin) ≤ {hi:.3f} (bound) > {GOAL_SUPPORTED}"))
        for what in ("covered", "joint"):
          total = c["intervals"] if what == "covered" else c["families"]
          if total and clopper_pearson(c[what], total)[1] < GOAL_COVERAGE:
            bad.append((comp, seeds, f"{'coverage' if what == 'covered' else 'joint coverage'} at truth {t:g}× "
                        f"margin {c[what] / total:.3f} (upper bound below {GOAL_COVERAGE})"))
  return bad


def _rate(k, n, bound):
  if not n:
    return "—"
  lo, hi = clopper_pearson(k, n)
  return f"{k / n:.3f} (≤ {hi:.3f})" if bound == "upper" else f"{k / n:.3f} (≥ {lo:.3f})"


def markdown(table, *, source, seconds, replicates, cpu):
  """One table per source: a row per component × seeds; P(supported) per truth (the false claims' with their
  upper bound), the power, P(against) at the margin, the lowest coverage and joint coverage over the truths."""
  kinds = {f"{c.claim}.{c.name}": c.kind for c in verdicts.COMPONENTS}
  head = "| component | seeds | studies | " + " | ".join(f"P(supported), truth {t:g}" for t in TRUTHS) + \
      " | power | P(against), truth 1 | coverage (lowest) | joint coverage (lowest) | seeds used: mean, 90% (truth 0; 2) |"
  lines = [f"**{source.name}** ({source.describe()}): {replicates} studies per cell; {seconds:.0f} s on {cpu}.", "",
           head, "|" + "---|" * (head.count("|") - 1)]
  for comp, by_seeds in table.items():
    for seeds, by in by_seeds.items():
      cells = []
      for t in TRUTHS:
        c = by.get(t)
        cells.append("—" if c is None else _rate(c["supported"], c["n"], "upper") if claim_false(kinds[comp], t)
                     else f"{c['supported'] / c['n']:.3f}")
      pt = by.get(power_truth(kinds[comp]))
      power = "—" if pt is None else f"{pt['supported'] / pt['n']:.2f}"
      at = by.get(1.0)
      against = "—" if at is None else f"{at['against'] / at['n']:.3f}"
      cov = min(by.values(), key=lambda c: c["covered"] / max(c["intervals"], 1))
      joint = min(by.values(), key=lambda c: c["joint"] / max(c["families"], 1))
      n = min(c["n"] for c in by.values())
      lines.append(f"| {comp} | {seeds_label(seeds)} | {n} | " + " | ".join(cells) + f" | {power} | {against} | "
                   f"{_rate(cov['covered'], cov['intervals'], 'lower')} | "
                   f"{_rate(joint['joint'], joint['families'], 'lower')} | {_used(by)} |")
  missed = goals(table)
  lines += ["", f"Goals (Clopper–Pearson 95% bounds: P(supported) ≤ {GOAL_SUPPORTED:g} where the claim is false, "
            f"coverage ≥ {GOAL_COVERAGE:g}): " + ("all met." if not missed else "missed: " + "; ".join(
                f"{c} at {seeds_label(s)} seeds: {w}" for c, s, w in missed) + ".")]
  return "\n".join(lines) + "\n"


def seeds_label(seeds):
  return f"auto ({', '.join(map(str, seeds.looks))})" if isinstance(seeds, sequential.Plan) else str(seeds)


def _used(by):
  """Seeds a sequential study used: mean and 90th percentile at truth 0 and at 2 × the margin ("—" if fixed)."""
  out = []
  for t in (0.0, 2.0):
    used = (by.get(t) or {}).get("seeds_used")
    if not used:
      return "—"
    out.append(f"{np.mean(used):.1f}, {np.percentile(used, 90):.0f}")
  return "; ".join(out)


def replace_block(text, block):
  """text with the part between the calibration markers replaced by block; ValueError when the markers are not
  there exactly once."""
  if text.count(CALIBRATION_START) != 1 or text.count(CALIBRATION_END) != 1:
    raise ValueError(f"needs exactly one {CALIBRATION_START} and one {CALIBRATION_END}")
  head, rest = text.split(CALIBRATION_START)
  _, tail = rest.split(CALIBRATION_END)
  return f"{head}{CALIBRATION_START}\n{block}{CALIBRATION_END}{tail}"
