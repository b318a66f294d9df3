"""report/paired.py: the shared example draw pairs networks, shared noise does not shrink with seeds, floors get a
continuity-corrected variance, old results fall back to independent binomials, and the power statement."""

import numpy as np
import pytest

from tfrobust.report import paired


def net(rng, n=1000, p=0.8):
  return rng.random(n) < p


def test_identical_networks_give_a_zero_width_contrast_and_a_real_width_level():
  rng = np.random.default_rng(0)
  ex = net(rng)
  a, b = (paired.Measure(float(ex.mean()), correct=ex, metric="clean") for _ in range(2))
  contrast = {s: [(a, 1.0), (b, -1.0)] for s in range(3)}
  level = {s: [(a, 1.0)] for s in range(3)}
  c, l = paired.intervals([contrast, level], key="k", margin=1.0, scale=100.0)
  assert c.hi - c.lo == pytest.approx(0.0, abs=1e-9)  # the same examples, the same outcomes: no noise at all
  binom = 100 * np.sqrt(0.8 * 0.2 / 1000)
  assert l.se == pytest.approx(binom, rel=0.15)  # the level keeps the test set's binomial noise


def test_shared_noise_does_not_shrink_with_seeds():
  rng = np.random.default_rng(1)
  ex = net(rng)
  m = paired.Measure(float(ex.mean()), correct=ex, metric="clean")
  se = {k: paired.intervals([{s: [(m, 1.0)] for s in range(k)}], key="k", margin=1.0, scale=100.0)[0].se
        for k in (3, 12, 48)}
  assert se[48] == pytest.approx(se[3], rel=0.1)


def test_independent_binomial_fallback_and_continuity_correction():
  m0 = paired.Measure(0.0, n=500, metric="adv")
  iv = paired.intervals([{s: [(m0, 1.0)] for s in range(3)}], key="k", margin=1.0, scale=100.0)[0]
  assert iv.hi > iv.lo  # a floor never gives a zero-width interval
  assert paired.cc_variance(0.0, 500) == pytest.approx((0.5 / 501) * (1 - 0.5 / 501) / 500)
  assert paired.cc_variance(0.3, 500) == pytest.approx(0.3 * 0.7 / 500)


def test_deterministic_and_simultaneous_is_wider():
  rng = np.random.default_rng(2)
  def m():
    ex = net(rng)
    return paired.Measure(float(ex.mean()), correct=ex, metric="clean")
  fam = [{s: [(m(), 1.0)] for s in range(4)} for _ in range(4)]
  one = paired.intervals(fam, key="k", margin=1.0, scale=100.0)
  again = paired.intervals(fam, key="k", margin=1.0, scale=100.0)
  sim = paired.intervals(fam, key="k", margin=1.0, scale=100.0, simultaneous=True)
  assert [(i.lo, i.hi) for i in one] == [(i.lo, i.hi) for i in again]
  assert all(s.hi - s.lo > o.hi - o.lo for s, o in zip(sim, one))


def test_seeds_needed():
  assert paired.seeds_needed(0.0, 0.0, 1.0) == 2
  few = paired.seeds_needed(0.5, 0.0, 1.0)
  assert few is not None and paired.seeds_needed(2.0, 0.0, 1.0) > few
  assert paired.seeds_needed(0.1, 1.0, 1.0) is None  # shared test-set noise: more seeds cannot help
