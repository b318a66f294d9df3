"""Pseudo-studies from real networks: the calibration's real-noise source (calibration.py).

A base study trains many seeds at one cell's hyperparameters (e.g. `--regimes=fixed_lr --batch_sizes=64
--momenta=0.9 --seeds=0,...,199` on digits). Its networks are exchangeable, so any labelling of them into the
cells of a pseudo-study has a true effect of exactly 0; an effect of truth × margin is then injected by flipping,
in each network, a known number of its right test examples to wrong (floor(x·n) plus one more with probability
frac(x·n), so that the expected accuracy falls by exactly x) and by adding to log2 λ_max. The networks' real
per-example outcomes are kept — their agreement on almost every example, the ties of discrete counts, the
ceilings — which a Gaussian copula only imitates. Each pseudo-study draws its test set from the base's (n examples
with replacement, the same draw for all its networks), so that the test-set noise its intervals account for is
there to be covered; with the base's test set fixed, the shared part of every interval would be noise that never
varies, and coverage would be near 1 by construction. A pseudo-study never holds the same network twice (that
would fake a tie), so a design of c cells needs c × seeds networks: each claim gets the smallest design that
judges it.
"""

import io

import numpy as np

from tfrobust import io as tf_io
from tfrobust.report import calibration, effects, synthetic_study, verdicts

FIXED, RATIO = effects.FIXED, effects.RATIO
DESIGNS = {
    # C1: a slope over every B at fixed η, one momentum (one part)
    "C1": tuple((FIXED, b, 0.9) for b in calibration.BATCHES),
    # C2: the contrasts of every B against B = 16 at constant η/B, one momentum (one family of four)
    "C2": tuple((RATIO, b, 0.9) for b in calibration.BATCHES),
    # C3: both regimes × both momenta at one B
    "C3": tuple((r, 64, m) for r in (FIXED, RATIO) for m in calibration.MOMENTA),
    # C4: both regimes × two B × both momenta: T varies at fixed B and μ, and B at fixed T
    "C4": tuple((r, b, m) for r in (FIXED, RATIO) for b in (16, 256) for m in calibration.MOMENTA),
}


def save_base(path, points, *, lr, base_batch_size, source):
  """Writes a base's per-example outcomes (bit-packed), log2 λ_max and hyperparameters to a small .npz: what a
  fresh clone's `make calibration` reads instead of the sweep that made it."""
  usable = [p for p in points if p.clean_ex is not None and p.adv_ex is not None and p.top_eig and p.top_eig > 0]
  clean = np.stack([p.clean_ex for p in usable])
  adv = np.stack([p.adv_ex for p in usable])
  buf = io.BytesIO()
  np.savez_compressed(buf, clean=np.packbits(clean, axis=1), adv=np.packbits(adv, axis=1),
                      n=np.array([clean.shape[1], adv.shape[1]]), top_eig=np.array([p.top_eig for p in usable]),
                      lr=np.array(lr), base_batch_size=np.array(base_batch_size), source=np.array(source))
  tf_io.write_bytes(path, buf.getvalue())


def load_base(path):
  """(Observations, lr, base_batch_size, source) of a base written by save_base."""
  with np.load(path) as z:
    n_clean, n_adv = (int(x) for x in z["n"])
    clean = np.unpackbits(z["clean"], axis=1, count=n_clean).astype(bool)
    adv = np.unpackbits(z["adv"], axis=1, count=n_adv).astype(bool)
    points = [verdicts.Observation(effects.FIXED, 0, 0.0, k, float(c.mean()), float(a.mean()), float(e),
                                   trial_id=f"net{k}", clean_ex=c, adv_ex=a, n_clean=n_clean, n_adv=n_adv)
              for k, (c, a, e) in enumerate(zip(clean, adv, z["top_eig"]))]
    return points, float(z["lr"]), int(z["base_batch_size"]), str(z["source"])


class RealNoise:
  """Pseudo-studies relabelled from a base study's Observations (module docstring)."""

  name = "real noise"
  groups = {claim: (claim,) for claim in DESIGNS}

  def __init__(self, points, *, lr, base_batch_size, source=""):
    usable = [p for p in points if p.clean_ex is not None and p.adv_ex is not None and p.top_eig
              and p.top_eig > 0]
    if len(usable) < 2 * len(DESIGNS["C3"]):
      raise ValueError(f"{len(usable)} networks with per-example outcomes and λ_max > 0: too few for a pseudo-study")
    self.clean = np.stack([p.clean_ex for p in usable])
    self.adv = np.stack([p.adv_ex for p in usable])
    self.log2_eig = np.log2([p.top_eig for p in usable])
    self.noise = synthetic_study.noise_of(usable, lr=lr, base_batch_size=base_batch_size, source=source)
    self.source = source

  def design(self, group):
    return DESIGNS[group]

  def capacity(self, group):
    return len(self.clean)

  def describe(self):
    return (f"{self.source}, relabelled (designs: C1 and C2 five B at μ = 0.9, C3 both regimes × both μ at B = 64, "
            f"C4 both regimes × B = 16, 256 × both μ): {self.noise.text()}")

  def cell_truth(self, comps, truth, margins, cell):
    acc, eig = calibration.group_shifts(comps, truth, margins, cell)
    return ({m: self.noise.level[m] + acc[m] for m in ("clean", "adv")}, self.noise.eig_level + eig)

  def study(self, comps, truth, margins, seeds, rng):
    cells = self.design(comps[0].claim)
    pick = rng.permutation(len(self.clean))[:len(cells) * seeds]
    ex_clean = rng.integers(0, self.clean.shape[1], self.clean.shape[1])  # one test set per pseudo-study,
    ex_adv = rng.integers(0, self.adv.shape[1], self.adv.shape[1])  # shared by its networks
    points = []
    for k, idx in enumerate(pick):
      cell, s = cells[k // seeds], k % seeds
      acc, eig = calibration.group_shifts(comps, truth, margins, cell)
      clean = flip(self.clean[idx, ex_clean], -acc["clean"], rng)
      adv = flip(self.adv[idx, ex_adv], -acc["adv"], rng)
      r, b, mu = cell
      points.append(verdicts.Observation(
          r, b, mu, s, float(clean.mean()), float(adv.mean()), 2.0 ** (self.log2_eig[idx] + eig),
          trial_id=f"{r}-b{b}-m{mu}-s{s}-net{idx}", clean_ex=clean, adv_ex=adv, n_clean=len(clean),
          n_adv=len(adv), lr_used=calibration.lr_of(r, b, self.noise)))
    return points


def flip(correct, drop, rng):
  """A copy of `correct` with floor(drop·n) of its right examples, plus one more with probability frac(drop·n),
  turned wrong (chosen at random): its accuracy falls by `drop` in expectation, exactly."""
  if drop <= 0:
    return correct
  x = drop * len(correct)
  k = int(np.floor(x)) + int(rng.random() < x - np.floor(x))
  right = np.flatnonzero(correct)
  if k > len(right):
    raise ValueError(f"cannot lower an accuracy of {correct.mean():.3f} by {drop:.3f}")
  out = correct.copy()
  out[rng.choice(right, size=k, replace=False)] = False
  return out
