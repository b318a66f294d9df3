"""The calibration's synthetic source (calibration.py): simulated studies on a real study's full grid whose noise
is measured on a study (noise_of) instead of assumed.

A network's true accuracy is drawn from a Beta around its cell's accuracy (the seed effect, never outside [0, 1],
with the cell's accuracy as its exact mean, so the truth is known), and its per-example outcomes from a Gaussian
copula: example i is right when √ρ·z_i + √(1−ρ)·e_ik < Φ⁻¹(p_k), z_i shared by every network of the study (how
networks scored on the same examples agree: on the committed studies ρ ≈ 0.97–0.99, two digits networks disagree on
a few of 360 examples). A fresh test set is drawn for every simulated study, so the truth is the accuracy over the
population of examples. C4's study adds a dependence on log2 T (T_SLOPES) that its regression must remove.
"""

import dataclasses
import math
from typing import Dict, Sequence

import numpy as np
from scipy import stats as sp_stats

from tfrobust.report import effects, verdicts
from tfrobust.report.calibration import FULL_GRID, MOMENTA, group_shifts, lr_of

T_SLOPES = {"clean": -0.005, "adv": -0.02, "eig": 0.5}  # per doubling of T: fractions (accuracies), log2 λ_max


@dataclasses.dataclass(frozen=True)
class Noise:
  """A study's noise: per metric (clean, adv) the level, test examples, the copula's ρ and the seed sd of a
  network's true accuracy; the sd of log2 λ_max over seeds. Defaults: measured (noise_of) on the committed mnist5k
  study (flags/mnist5k_study.cfg, 2026-12-07)."""
  level: Dict[str, float] = dataclasses.field(default_factory=lambda: {"clean": 0.956, "adv": 0.831})
  n: Dict[str, int] = dataclasses.field(default_factory=lambda: {"clean": 1000, "adv": 500})
  rho: Dict[str, float] = dataclasses.field(default_factory=lambda: {"clean": 0.882, "adv": 0.887})
  seed_sd: Dict[str, float] = dataclasses.field(default_factory=lambda: {"clean": 0.0024, "adv": 0.0087})
  eig_level: float = 2.15
  eig_sd: float = 0.26
  lr: float = 0.02
  base_batch_size: int = 64
  source: str = "the committed mnist5k study"

  def text(self):
    """The noise in words (the calibration tables' headers)."""
    return (f"clean {100 * self.level['clean']:.1f}% on {self.n['clean']} examples, ρ = {self.rho['clean']:.3f}, "
            f"seed sd {100 * self.seed_sd['clean']:.2f} points; adversarial {100 * self.level['adv']:.1f}% on "
            f"{self.n['adv']}, ρ = {self.rho['adv']:.3f}, seed sd {100 * self.seed_sd['adv']:.2f}; log2 λ_max sd "
            f"{self.eig_sd:.2f}")


def copula_outcomes(p, z, rho, rng):
  """[networks, n] bool: network k right on example i when √ρ·z_i + √(1−ρ)·e_ik < Φ⁻¹(p_k)."""
  e = rng.standard_normal((len(p), len(z)))
  return math.sqrt(rho) * z[None, :] + math.sqrt(1 - rho) * e < sp_stats.norm.ppf(np.asarray(p))[:, None]


class Synthetic:
  """Simulated studies on the full grid (module docstring): C1–C3 share one study, C4 has its own (its
  regression over every regime would see C1's and C2's effects)."""

  name = "synthetic"
  groups = {"C1-C3": ("C1", "C2", "C3"), "C4": ("C4",)}

  def __init__(self, noise=Noise()):
    self.noise = noise

  def design(self, group):
    return FULL_GRID

  def capacity(self, group):
    return None  # any number of seeds

  def describe(self):
    return f"the full grid; noise from {self.noise.source}: {self.noise.text()}"

  def cell_truth(self, comps, truth, margins, cell):
    """({metric: true mean accuracy}, log2 λ_max) of a cell: the levels, the T slopes (C4's study only: its
    regression removes them) and the injected shifts; ValueError where an accuracy would leave [0, 1]."""
    r, b, mu = cell
    acc, eig = group_shifts(comps, truth, margins, cell)
    t = 0.0
    if any(c.claim == "C4" for c in comps):
      t = math.log2(lr_of(r, b, self.noise) / (b * (1 - mu))) - math.log2(self.noise.lr / self.noise.base_batch_size)
    out = {}
    for metric in ("clean", "adv"):
      out[metric] = self.noise.level[metric] + acc[metric] + T_SLOPES[metric] * t
      if not 0 < out[metric] < 1:
        raise ValueError(f"a true {metric} accuracy of {out[metric]:.3f} leaves [0, 1]")
    return out, self.noise.eig_level + eig + T_SLOPES["eig"] * t

  def study(self, comps, truth, margins, seeds, rng):
    noise, cells = self.noise, self.design(None)
    truths = [self.cell_truth(comps, truth, margins, c) for c in cells]
    keys = [(c, s) for c in cells for s in range(seeds)]
    outcomes = {}
    for metric in ("clean", "adv"):
      sd = noise.seed_sd[metric]
      acc = np.repeat([t[0][metric] for t in truths], seeds)
      if sd > 0:
        kappa = np.maximum(acc * (1 - acc) / sd ** 2 - 1, 1.0)
        acc = rng.beta(acc * kappa, (1 - acc) * kappa)
      acc = np.clip(acc, 1e-6, 1 - 1e-6)
      outcomes[metric] = copula_outcomes(acc, rng.standard_normal(noise.n[metric]), noise.rho[metric], rng)
    eigs = np.repeat([t[1] for t in truths], seeds) + rng.normal(0, noise.eig_sd, len(keys))
    points = []
    for k, ((r, b, mu), s) in enumerate(keys):
      clean, adv = outcomes["clean"][k], outcomes["adv"][k]
      points.append(verdicts.Observation(
          r, b, mu, s, float(clean.mean()), float(adv.mean()), 2.0 ** eigs[k], trial_id=f"{r}-b{b}-m{mu}-s{s}",
          clean_ex=clean, adv_ex=adv, n_clean=len(clean), n_adv=len(adv), lr_used=lr_of(r, b, noise)))
    return points


def simulate(truth, rng, noise=Noise(), seeds=3):
  """Observations of one synthetic study of C1–C3 on the full grid, every component at truth × its margin."""
  comps = [c for c in verdicts.COMPONENTS if c.claim in ("C1", "C2", "C3")]
  return Synthetic(noise).study(comps, truth, verdicts.margins(), seeds, rng)


def noise_of(points: Sequence, *, lr=None, base_batch_size=None, source="") -> Noise:
  """The noise of a study's networks, pooled over its cells (regime × B × μ; a base of many seeds at one cell is
  one cell): per metric the mean accuracy, the test examples, the copula's ρ (the tetrachoric correlation that
  gives the observed mean count of examples two networks of a cell both get wrong) and the sd of the networks'
  true accuracies (the observed sd within a cell less the unshared binomial part, at least 0), each the median
  over cells with at least two networks; the sd of log2 λ_max likewise."""
  cells: Dict[tuple, list] = {}
  for p in points:
    cells.setdefault((p.regime, p.batch_size, p.momentum), []).append(p)
  cells = {k: v for k, v in cells.items() if len(v) >= 2}
  if not cells:
    raise ValueError("no cell holds two networks: the seed noise cannot be measured")
  out = {"level": {}, "n": {}, "rho": {}, "seed_sd": {}}
  for metric in ("clean", "adv"):
    levels, rhos, sds, ns = [], [], [], []
    for members in cells.values():
      have = [getattr(p, f"{metric}_ex") for p in members if getattr(p, f"{metric}_ex") is not None]
      if len(have) < 2:
        continue
      ex = np.stack(have)
      acc = ex.mean(axis=1)
      p, n, k = float(acc.mean()), ex.shape[1], len(ex)
      wrong = (~ex).astype(float).sum(axis=0)  # per example: how many networks get it wrong
      both_wrong = float((wrong ** 2 - wrong).sum() / (k * (k - 1)) / n)  # mean over distinct pairs of networks
      rho = tetrachoric(1 - p, both_wrong)
      levels.append(p)
      ns.append(n)
      rhos.append(rho)
      sds.append(math.sqrt(max(float(acc.var(ddof=1)) - p * (1 - p) * (1 - rho) / n, 0.0)))
    if not levels:
      raise ValueError(f"no per-example {metric} outcomes (examples.npz)")
    out["level"][metric], out["n"][metric] = float(np.mean(levels)), int(np.median(ns))
    out["rho"][metric], out["seed_sd"][metric] = float(np.median(rhos)), float(np.median(sds))
  eig_sds = [np.std([math.log2(p.top_eig) for p in m if p.top_eig and p.top_eig > 0], ddof=1)
             for m in cells.values() if sum(1 for p in m if p.top_eig and p.top_eig > 0) >= 2]
  eigs = [math.log2(p.top_eig) for p in points if p.top_eig and p.top_eig > 0]
  return Noise(out["level"], out["n"], out["rho"], out["seed_sd"], eig_level=float(np.mean(eigs)) if eigs else 3.0,
               eig_sd=float(np.median(eig_sds)) if eig_sds else Noise.eig_sd, lr=lr or Noise.lr,
               base_batch_size=base_batch_size or Noise.base_batch_size, source=source)


def tetrachoric(q, both):
  """ρ of a standard bivariate normal whose both-below-Φ⁻¹(q) probability is `both` (q: the marginal)."""
  a = sp_stats.norm.ppf(q)

  def f(r):
    return sp_stats.multivariate_normal.cdf([a, a], mean=[0, 0], cov=[[1, r], [r, 1]]) - both
  if f(0.0) >= 0:
    return 0.0
  if f(0.999) <= 0:
    return 0.999
  from scipy import optimize  # pylint: disable=import-outside-toplevel
  return float(optimize.brentq(f, 0.0, 0.999, xtol=1e-4))
