"""An ε-free robustness statistic per trial, from its examples.npz (records.run.Examples): each attacked example's
smallest fooling ε on the grid (inf: never fooled there), summarised by its median and mean, and the area under
the robust-accuracy curve. Accuracy at one report ε has an ε to choose and a floor and a ceiling (every network at
0% or 100% there says nothing); these have neither.

  median fooling ε   over the attacked examples; inf when more than half are never fooled on the grid
  mean fooling ε     over the attacked examples, a never-fooled one counted at the grid's largest ε (a lower
                     bound: the mean is censored at ε_max, and the share never fooled is given beside it)
  area               mean over examples of the area under its own correct-vs-ε step curve on [0, ε_max] (trapezoid
                     rule over 0 and the grid; at ε = 0 the clean outcome), divided by ε_max: the mean robust
                     accuracy over [0, ε_max], a fraction. Per example it is a number in [0, 1], so the paired
                     intervals count it as an accuracy (paired.Measure.correct may hold these areas).
ε is on the [0, 1] pixel scale in the attack's norm.
"""

import dataclasses
from typing import Optional

import numpy as np


STATISTICS = (
    "median fooling ε: the median over the attacked examples of each one's smallest fooling ε on the grid; "
    "\"> ε_max\" when more than half are never fooled on it",
    "mean fooling ε: their mean, a never-fooled example counted at the grid's largest ε (censored there: a lower "
    "bound; the share never fooled is given beside it)",
    "area: the mean over examples of the area under each one's correct-vs-ε curve on [0, ε_max] (trapezoid rule "
    "over 0 and the grid; at ε = 0 its clean outcome) divided by ε_max, i.e. the mean robust accuracy over "
    "[0, ε_max]; per example a number in [0, 1], so its test-set noise counts as an accuracy's")


@dataclasses.dataclass(frozen=True)
class EpsFree:
  median_fool_eps: float  # inf: more than half never fooled on the grid
  mean_fool_eps: float  # censored at eps_max
  never_fooled: float  # fraction of the attacked examples never fooled on the grid
  auc: float  # mean robust accuracy over [0, eps_max]
  auc_ex: np.ndarray  # per example: its area over [0, eps_max] / eps_max
  eps_max: float


def per_example_area(eps, correct, clean):
  """[n] area under each example's correct-vs-ε curve over [0, ε_max] / ε_max (trapezoid over 0 and the grid; at
  ε = 0 its clean outcome). eps [k] ascending, correct [k, n] bool, clean [n] bool."""
  eps = np.asarray(eps, float)
  correct = np.asarray(correct, float)
  if eps[0] > 0:
    eps = np.concatenate([[0.0], eps])
    correct = np.concatenate([np.asarray(clean, float)[None, :], correct])
  widths = np.diff(eps)
  area = (widths[:, None] * (correct[1:] + correct[:-1]) / 2).sum(axis=0)
  return area / eps[-1]


def summarize(examples, attack, norm) -> Optional[EpsFree]:
  """The ε-free statistics of one run's curve (attack, norm), or None when it has no such curve or no ε > 0."""
  if examples is None or (attack, norm) not in examples.curves:
    return None
  curve = examples.curves[(attack, norm)]
  eps = np.asarray(curve.eps, float)
  if len(eps) == 0 or eps[-1] <= 0:
    return None
  fool = np.asarray(curve.min_fool_eps, float)
  n = fool.shape[0]
  clean = np.asarray(examples.clean, bool)[:n]
  area = per_example_area(eps, curve.correct, clean)
  return EpsFree(median_fool_eps=float(np.median(fool)), mean_fool_eps=float(np.minimum(fool, eps[-1]).mean()),
                 never_fooled=float(np.isinf(fool).mean()), auc=float(area.mean()), auc_ex=area,
                 eps_max=float(eps[-1]))


def fmt_eps(value):
  return "> ε_max" if value == np.inf else f"{value:.3g}"
