"""report/correlation.py: on synthetic trials with a known rank correlation the Spearman estimate's bootstrap
interval holds the truth, and the partial correlation given the loss removes a correlation the loss alone makes."""

import math

import numpy as np

from tfrobust.report import correlation


def _bivariate(r, n, seed):
  rng = np.random.default_rng(seed)
  z = rng.standard_normal((n, 2))
  return z[:, 0], r * z[:, 0] + math.sqrt(1 - r * r) * z[:, 1]


def test_a_known_rank_correlation_is_inside_its_interval():
  for r, seed in ((-0.6, 0), (0.0, 1), (0.8, 2)):
    truth = 6 / math.pi * math.asin(r / 2)  # Spearman's ρ of a bivariate normal with Pearson r
    x, y = _bivariate(r, 200, seed)
    c = correlation.spearman(np.exp(x), y, reps=1000)  # a monotone transform changes nothing
    assert c.lo <= truth <= c.hi and c.hi - c.lo < 0.35, (r, c)


def test_the_partial_correlation_given_the_loss_removes_what_the_loss_explains():
  rng = np.random.default_rng(3)
  loss = rng.standard_normal(300)
  curvature, robustness = loss + 0.3 * rng.standard_normal(300), -loss + 0.3 * rng.standard_normal(300)
  assert correlation.spearman(curvature, robustness, reps=500).hi < -0.7
  partial = correlation.spearman(curvature, robustness, loss, reps=500)
  assert partial.lo < 0 < partial.hi


def test_too_few_trials_give_no_value():
  c = correlation.spearman([1, 2, 3, 4], [4, 3, 2, 1])
  assert c.rho is None and "fewer than" in correlation.fmt(c)
