"""report/epsfree.py: the ε-free statistics against hand-computed values, and the area as a metric the verdicts
can judge (resampled per example by the paired bootstrap)."""

import math

import numpy as np
import pytest

from tfrobust.records import run
from tfrobust.report import claims, effects, epsfree, verdicts


def _examples():
  eps = np.array([0.1, 0.2, 0.4])
  correct = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]], bool)  # example 0 never fooled
  clean = np.array([1, 1, 0, 1], bool)
  return run.Examples(clean=clean, curves={("pgd", "inf"): run.ExampleCurve("pgd", "inf", eps, correct)})


def test_statistics_by_hand():
  s = epsfree.summarize(_examples(), "pgd", "inf")
  # smallest fooling ε: inf, 0.2, 0.1 (wrong at ε = 0.1 too), 0.1
  assert s.median_fool_eps == pytest.approx(0.15) and s.never_fooled == 0.25
  assert s.mean_fool_eps == pytest.approx((0.4 + 0.2 + 0.1 + 0.1) / 4)
  # areas over [0, 0.4] / 0.4 (clean at 0): 1; (0.1 + 0.05) / 0.4; 0; 0.05 / 0.4
  assert s.auc_ex == pytest.approx([1.0, 0.375, 0.0, 0.125]) and s.auc == pytest.approx(1.5 / 4)
  assert epsfree.summarize(_examples(), "fgsm", "inf") is None
  assert epsfree.fmt_eps(math.inf) == "> ε_max"


def test_the_area_is_a_metric_the_verdicts_can_judge():
  """A C1-like component on adv_auc: a drop of 3 points per doubling of B is supported."""
  rng = np.random.default_rng(0)
  points = []
  for b in (16, 32, 64, 128, 256):
    for s in range(3):
      p = 0.6 - 0.03 * math.log2(b / 16)
      area = (rng.random(2000) < p).astype(float)
      f = epsfree.EpsFree(1.0, 1.0, 0.0, float(area.mean()), area, 0.3)
      points.append(verdicts.Observation("fixed_lr", b, 0.0, s, 0.9, trial_id=f"b{b}s{s}", eps_free=f))
  comp = claims.Component("C1", "adv_auc", ("fixed_lr",), "adv_auc", claims.DECREASE, "acc", claims.PER_DOUBLING,
                          "slope of the area under the robust-accuracy curve vs log2 B")
  row = verdicts.judge(comp, points, effects.ALL, 1.0)
  assert row["verdict"] == claims.SUPPORTED and row["estimate"] == pytest.approx(-3.0, abs=0.5), row["why"]
