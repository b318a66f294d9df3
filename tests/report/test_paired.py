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
  c, l = paired.intervals([contrast, level], key="k", scale=100.0)
  assert c.hi - c.lo == pytest.approx(0.0, abs=1e-9)  # the same examples, the same outcomes: no noise at all
  binom = 100 * np.sqrt(0.8 * 0.2 / 1000)
  assert l.se == pytest.approx(binom, rel=0.15)  # the level keeps the test set's binomial noise


def test_shared_noise_does_not_shrink_with_seeds():
  rng = np.random.default_rng(1)
  ex = net(rng)
  m = paired.Measure(float(ex.mean()), correct=ex, metric="clean")
  se = {k: paired.intervals([{s: [(m, 1.0)] for s in range(k)}], key="k", scale=100.0)[0].se
        for k in (3, 12, 48)}
  assert se[48] == pytest.approx(se[3], rel=0.1)


def test_independent_binomial_fallback_and_continuity_correction():
  m0 = paired.Measure(0.0, n=500, metric="adv")
  iv = paired.intervals([{s: [(m0, 1.0)] for s in range(3)}], key="k", scale=100.0)[0]
  assert iv.hi > iv.lo  # a floor never gives a zero-width interval
  assert paired.cc_variance(0.0, 500) == pytest.approx((0.5 / 501) * (1 - 0.5 / 501) / 500)
  assert paired.cc_variance(0.3, 500) == pytest.approx(0.3 * 0.7 / 500)


def test_deterministic_and_simultaneous_is_wider():
  rng = np.random.default_rng(2)
  def m():
    ex = net(rng)
    return paired.Measure(float(ex.mean()), correct=ex, metric="clean")
  fam = [{s: [(m(), 1.0)] for s in range(4)} for _ in range(4)]
  one = paired.intervals(fam, key="k", scale=100.0)
  again = paired.intervals(fam, key="k", scale=100.0)
  sim = paired.intervals(fam, key="k", scale=100.0, simultaneous=True)
  assert [(i.lo, i.hi) for i in one] == [(i.lo, i.hi) for i in again]
  assert all(s.hi - s.lo > o.hi - o.lo for s, o in zip(sim, one))


def _discordant_study(n=360, fixed=8, broken=2, seeds=3):
  """Three seeds whose contrasts are each +6 examples net (8 fixed, 2 broken), on disjoint examples per seed; the
  reference network is the same in every seed: s² = 0 by the coincidence of counts, nothing shared."""
  base = np.ones(n, bool)
  base[: n // 4] = False  # 75% right
  ref = paired.Measure(float(base.mean()), correct=base, metric="clean")
  fam = {}
  for s in range(seeds):
    c = base.copy()
    start = s * (fixed + broken)
    c[start:start + fixed] = True  # wrong in base → right
    c[n // 4 + start:n // 4 + start + broken] = False  # right in base → wrong
    fam[s] = [(paired.Measure(float(c.mean()), correct=c, metric="clean"), 1.0), (ref, -1.0)]
  return fam


def test_contrasts_that_tie_by_count_but_differ_by_example_keep_their_test_set_noise():
  """Each seed's contrast is +1.67 points made of different examples: s² = 0 and V_shared ≈ 0, and the interval was
  [+1.67, +1.67]. Each seed's own McNemar variance (10 discordant examples of 360: sd 0.88 points) stays."""
  iv = paired.intervals([_discordant_study()], key="k", scale=100.0)[0]
  assert iv.estimate == pytest.approx(100 * 6 / 360)
  assert iv.sd_seed == pytest.approx(0.0, abs=1e-9)
  mcnemar = 100 * np.sqrt((10 / 360 - (6 / 360) ** 2) / 360)
  assert iv.sd_own == pytest.approx(mcnemar, rel=0.05)
  assert iv.hi - iv.lo == pytest.approx(2 * paired.Z * mcnemar / np.sqrt(3), rel=0.05)
  assert iv.hi > 2.0  # straddles a 2-point equivalence margin: not supported


def test_no_zero_width_unless_every_network_is_identical():
  rng = np.random.default_rng(7)
  base = rng.random(360) < 0.9
  for k in range(20):
    c = base.copy()
    c[rng.integers(0, 360)] ^= True  # one discordant example per seed
    ref = paired.Measure(float(base.mean()), correct=base, metric="clean")
    fam = {s: [(paired.Measure(float(c.mean()), correct=c, metric="clean"), 1.0), (ref, -1.0)] for s in range(3)}
    iv = paired.intervals([fam], key="k", scale=100.0)[0]
    assert iv.hi - iv.lo > 0, k


def test_the_binomial_fallback_keeps_each_networks_noise_when_seeds_tie():
  """Without examples.npz every network counts as an independent binomial: equal values in every seed (s² = 0)
  still give each seed's Σ w²·p(1 − p)/n."""
  a, b = paired.Measure(0.8, n=400, metric="clean"), paired.Measure(0.75, n=400, metric="clean")
  iv = paired.intervals([{s: [(a, 1.0), (b, -1.0)] for s in range(3)}], key="k", scale=100.0)[0]
  own = 100 * np.sqrt(0.8 * 0.2 / 400 + 0.75 * 0.25 / 400)
  assert iv.sd_shared == 0 and iv.sd_own == pytest.approx(own)
  assert iv.hi - iv.lo == pytest.approx(2 * paired.Z * own / np.sqrt(3))


def test_the_covariance_is_the_bootstrap_s_limit():
  """The closed form equals what resampling the examples estimates (20,000 shared draws, within Monte-Carlo error)."""
  rng = np.random.default_rng(3)
  z = rng.standard_normal(500)
  nets = [[(0.8 * z + 0.6 * rng.standard_normal(500)) < 0.8 for _ in range(2)] for _ in range(3)]
  ms = [[paired.Measure(float(c.mean()), correct=c, metric="clean") for c in pair] for pair in nets]
  terms = {s: [(ms[s][0], 1.0), (ms[s][1], -1.0)] for s in range(3)}
  cov = paired.example_covariance(terms, [0, 1, 2])
  idx = rng.integers(0, 500, size=(20000, 500))
  d = np.stack([nets[s][0].astype(float) - nets[s][1] for s in range(3)], axis=1)
  boot = d[idx].mean(axis=1)
  assert cov == pytest.approx(np.cov(boot.T), rel=0.05, abs=1e-5)
