"""Operating characteristics of the verdict rules, measured: studies with a known truth are simulated with the
noise of the committed mnist5k study and judged by the real report code (verdicts.judge on Observations with
per-example outcomes), and the share of supported / against / inconclusive verdicts per true effect, and the
coverage of the 95% intervals, is counted. `python -m tfrobust.calibrate` writes the table into
docs/verdicts.md between CALIBRATION_START and CALIBRATION_END.

The simulated study is the committed one's grid: fixed_lr and constant_ratio × B = 16…256 × μ ∈ {0, 0.9} × 3
seeds. A network's true accuracy is level + effect(B, μ, regime) + a seed effect (normal); its per-example
outcomes come from a Gaussian copula: example i is right when √ρ·z_i + √(1−ρ)·e_ik < Φ⁻¹(p_k), z_i shared by
every network (the correlation of networks scored on the same examples), e_ik its own. A fresh test set is drawn
for every simulated study, so the truth is the accuracy over the population of examples.

C4 gets its own simulated study on the same grid (η = 0.02 at B₀ = 64, the mnist5k study's): every metric is a
function of log2 T (clean −0.5 points, adversarial −2 points, log2 λ_max +0.5 per doubling of T) plus a separate
effect of truth × margin per doubling of B at fixed T (accuracies falling, λ_max rising); the μ term's truth is 0.
"""

import dataclasses
import math
import time

import numpy as np
from scipy import stats as sp_stats

from tfrobust.report import claims, effects, paired, verdicts

CALIBRATION_START = "<!-- calibration:start -->"
CALIBRATION_END = "<!-- calibration:end -->"
TRUTHS = (0.0, 0.5, 1.0, 2.0)  # true effect in margins


@dataclasses.dataclass(frozen=True)
class Noise:
  """The noise of the committed mnist5k study (docs/results/mnist5k_study/report.md, 3 seeds; per-example outcomes
  were not recorded then). sd_*: a network's sd over seeds, test-set sampling included, from the per-momentum slope
  t-intervals (half-width h: sd = h·√3/t_{0.975,2}·√10, the median over regime × momentum); levels: the medians."""
  clean_level: float = 0.975
  clean_n: int = 1000  # mnist5k's test split
  clean_sd: float = 0.006
  adv_level: float = 0.89  # PGD L∞ at ε = 0.05, the report's median
  adv_n: int = 500  # the robustness section's examples
  adv_sd: float = 0.03
  eig_level: float = 3.0  # log2 λ_max
  eig_sd: float = 0.9
  rho: float = 0.5  # assumed: not measurable without per-example outcomes; a flag of the command
  momentum_gain: float = 0.01  # μ = 0.9 over μ = 0 at constant η/B (C3's common part)


BATCHES, MOMENTA, SEEDS = (16, 32, 64, 128, 256), (0.0, 0.9), (0, 1, 2)
SPAN = math.log2(BATCHES[-1] / BATCHES[0])  # doublings from B_ref to the largest B


def _seed_sd(total, p, n):
  """The seed part of a network's sd: the total less the binomial part, never below a third of the total."""
  return math.sqrt(max(total ** 2 - p * (1 - p) / n, (total / 3) ** 2))


def simulate(truth, rng, noise=Noise(), margins=None):
  """Observations of one simulated study where every component's true effect is `truth` × its margin: C1 slopes
  −truth·m (accuracy) and +truth·m (log2 λ_max) per doubling at every momentum; at constant η/B a straight drop in
  log2 B whose largest contrast, B = 256 against 16, is −truth × the C2 margin; C3 E = +truth·m."""
  m = margins or verdicts.margins()
  z = {"clean": rng.standard_normal(noise.clean_n), "adv": rng.standard_normal(noise.adv_n)}
  points = []
  for regime in (effects.FIXED, effects.RATIO):
    for mu in MOMENTA:
      for b in BATCHES:
        d = math.log2(b / BATCHES[0])
        for s in SEEDS:
          slope = -truth * (m["acc"] if regime == effects.FIXED else m["c2"] / SPAN) / 100
          gain = (noise.momentum_gain + (truth * m["momentum"] / 100 if regime == effects.FIXED else 0.0)) * (mu > 0)
          eig = noise.eig_level + (truth * m["eig"] * d if regime == effects.FIXED else 0)
          points.append(_network(regime, b, mu, s, {"clean": noise.clean_level + slope * d + gain,
                                                    "adv": noise.adv_level + slope * d + gain}, eig, z, rng, noise))
  return points


def _network(regime, b, mu, s, levels, eig, z, rng, noise, lr_used=None):
  """One simulated network: true accuracies `levels` plus a seed effect, per-example outcomes from the copula on
  the study's shared example difficulties z, and log2 λ_max `eig` plus its seed noise."""
  vals = {}
  for metric, n, sd in (("clean", noise.clean_n, noise.clean_sd), ("adv", noise.adv_n, noise.adv_sd)):
    p = levels[metric]
    p = min(max(p + rng.normal(0, _seed_sd(sd, p, n)), 1e-4), 1 - 1e-4)
    latent = math.sqrt(noise.rho) * z[metric] + math.sqrt(1 - noise.rho) * rng.standard_normal(n)
    vals[metric] = latent < sp_stats.norm.ppf(p)
  return verdicts.Observation(
      regime, b, mu, s, float(vals["clean"].mean()), float(vals["adv"].mean()),
      2.0 ** (eig + rng.normal(0, noise.eig_sd)), trial_id=f"{regime}-b{b}-m{mu}-s{s}", clean_ex=vals["clean"],
      adv_ex=vals["adv"], n_clean=noise.clean_n, n_adv=noise.adv_n, lr_used=lr_used)


LR, BASE_B = 0.02, 64  # the mnist5k study's η at B₀
T_SLOPES = {"clean": -0.005, "adv": -0.02, "eig": 0.5}  # per doubling of T: fractions (accuracies), log2 λ_max


def simulate_temperature(truth, rng, noise=Noise(), margins=None):
  """Observations of one simulated study for C4: metrics a function of log2 T plus truth × margin per doubling of
  B at fixed T (accuracies: the acc margin in points; log2 λ_max: the eig margin)."""
  m = margins or verdicts.margins()
  z = {"clean": rng.standard_normal(noise.clean_n), "adv": rng.standard_normal(noise.adv_n)}
  center = math.log2(LR / BASE_B)
  points = []
  for regime in (effects.FIXED, effects.RATIO):
    for mu in MOMENTA:
      for b in BATCHES:
        lr = LR if regime == effects.FIXED else LR * b / BASE_B
        t = math.log2(lr / (b * (1 - mu))) - center
        d = math.log2(b / BATCHES[0])
        for s in SEEDS:
          levels = {k: level + T_SLOPES[k] * t - truth * m["acc"] / 100 * d
                    for k, level in (("clean", noise.clean_level), ("adv", noise.adv_level))}
          eig = noise.eig_level + T_SLOPES["eig"] * t + truth * m["eig"] * d
          points.append(_network(regime, b, mu, s, levels, eig, z, rng, noise, lr_used=lr))
  return points


def true_value(comp, truth, margins, part=None):
  """The true value of a judged part (a verdicts.json part): C4's log2 B term is ∓truth × margin (accuracies fall,
  log2 λ_max rises), its μ term 0; C2's contrast at B is −truth × margin × log2(B/B_ref)/SPAN."""
  part = part or {}
  if comp.claim == "C4":
    sign = 1.0 if comp.metric == "log2_eig" else -1.0
    return sign * margins[comp.margin] * truth if part.get("name", "").startswith("log2 B") else 0.0
  if comp.claim == "C2":
    return -margins[comp.margin] * truth * math.log2((part.get("batch_size") or BATCHES[-1]) / BATCHES[0]) / SPAN
  m = margins[comp.margin] * truth
  return {claims.DECREASE: -m, claims.INCREASE: m, claims.POSITIVE: m, claims.EQUIVALENT: -m}[comp.kind]


def run(replicates=200, *, reps=1000, noise=Noise(), seed=0, progress=None):
  """{component: {truth: {"supported", "against", "inconclusive", "coverage", "n"}}} and the seconds taken."""
  margins = verdicts.margins()
  pair = (MOMENTA[0], MOMENTA[-1])
  tally = {f"{c.claim}.{c.name}": {t: dict(supported=0, against=0, inconclusive=0, covered=0, intervals=0,
                                            joint=0, families=0) for t in TRUTHS} for c in verdicts.COMPONENTS}
  start = time.time()
  for t in TRUTHS:
    for r in range(replicates):
      rng = np.random.default_rng([seed, int(t * 100), r])
      studies = {"C1-C3": simulate(t, rng, noise, margins), "C4": simulate_temperature(t, rng, noise, margins)}
      for comp in verdicts.COMPONENTS:
        points = studies["C4" if comp.claim == "C4" else "C1-C3"]
        row = verdicts.judge(comp, points, effects.ALL, margins[comp.margin], pair=pair)
        cell = tally[f"{comp.claim}.{comp.name}"][t]
        vote = claims.vote(row["verdict"])
        cell[{claims.SUPPORTED: "supported", claims.NOT_SUPPORTED: "against"}.get(vote, "inconclusive")] += 1
        families = {}
        for part in row["parts"]:
          if part["ci"] is not None and part["judged"]:
            truth = true_value(comp, t, margins, part)
            cell["intervals"] += 1
            cell["covered"] += part["ci"][0] <= truth <= part["ci"][1]
            families.setdefault(part["momentum"], []).append(part["ci"][0] <= truth <= part["ci"][1])
        if comp.kind == claims.EQUIVALENT:  # a simultaneous family per momentum (C2) or one (C4)
          cell["families"] += len(families)
          cell["joint"] += sum(all(f) for f in families.values())
      if progress:
        progress(t, r)
  out = {k: {t: {"supported": c["supported"] / replicates, "against": c["against"] / replicates,
                 "inconclusive": c["inconclusive"] / replicates,
                 "coverage": c["covered"] / c["intervals"] if c["intervals"] else math.nan,
                 "joint": c["joint"] / c["families"] if c["families"] else math.nan, "n": replicates}
             for t, c in by.items()} for k, by in tally.items()}
  return out, time.time() - start


def goals(table):
  """[(component, problem)] where the table misses the goals: P(supported) ≤ 5% where the claim is false (a true
  effect at or below the margin; for C2's equivalence, at or above it) and coverage ≥ 93%, jointly for a
  simultaneous family."""
  kinds = {f"{c.claim}.{c.name}": c.kind for c in verdicts.COMPONENTS}
  bad = []
  for comp, by in table.items():
    for t, cell in by.items():
      false_claim = t >= 1.0 if kinds[comp] == claims.EQUIVALENT else t <= 1.0
      if false_claim and cell["supported"] > 0.05:
        bad.append((comp, f"P(supported | truth {t:g}× margin) = {cell['supported']:.3f} > 0.05"))
      if cell["coverage"] < 0.93:
        bad.append((comp, f"coverage at truth {t:g}× margin = {cell['coverage']:.3f} < 0.93"))
      if cell.get("joint", math.nan) < 0.93:
        bad.append((comp, f"joint coverage at truth {t:g}× margin = {cell['joint']:.3f} < 0.93"))
  return bad


def markdown(table, *, seconds, replicates, reps, cpu, noise=Noise()):
  """The table docs/verdicts.md quotes, with how it was made."""
  lines = [f"{replicates} simulated studies per truth, {reps} bootstrap replicates each; {seconds:.0f} s on {cpu}. "
           f"Noise (mnist5k): clean {100 * noise.clean_level:g}% on {noise.clean_n} examples, seed sd "
           f"{100 * noise.clean_sd:g} points; adversarial {100 * noise.adv_level:g}% on {noise.adv_n}, seed sd "
           f"{100 * noise.adv_sd:g}; log2 λ_max sd {noise.eig_sd:g}; example correlation ρ = {noise.rho:g} "
           "(assumed); 3 seeds. Truth in margins (C2: the largest contrast, B = 256 against 16); P(against) counts "
           "contradicted and negligible; C2 and C4 claim equivalence, so their false claims are the truths at or "
           "above the margin. Joint coverage: the share of simultaneous families (C2: per momentum; C4: the two "
           "terms) whose every interval covers its truth.", "",
           "| component | truth (× margin) | P(supported) | P(against) | P(inconclusive) | coverage of 95% intervals "
           "| joint coverage |", "|---|---|---|---|---|---|---|"]
  for comp, by in table.items():
    for t, c in by.items():
      joint = "—" if math.isnan(c.get("joint", math.nan)) else f"{c['joint']:.3f}"
      lines.append(f"| {comp} | {t:g} | {c['supported']:.3f} | {c['against']:.3f} | {c['inconclusive']:.3f} | "
                   f"{c['coverage']:.3f} | {joint} |")
  missed = goals(table)
  lines += ["", "Goals (P(supported) ≤ 5% where the claim is false; coverage ≥ 93%): "
            + ("all met." if not missed else "missed: " + "; ".join(f"{c}: {w}" for c, w in missed) + ".")]
  return "\n".join(lines) + "\n"


def replace_block(text, block):
  """text with the part between the calibration markers replaced by block; ValueError when the markers are not
  there exactly once."""
  if text.count(CALIBRATION_START) != 1 or text.count(CALIBRATION_END) != 1:
    raise ValueError(f"needs exactly one {CALIBRATION_START} and one {CALIBRATION_END}")
  head, rest = text.split(CALIBRATION_START)
  _, tail = rest.split(CALIBRATION_END)
  return f"{head}{CALIBRATION_START}\n{block}{CALIBRATION_END}{tail}"
