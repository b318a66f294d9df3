"""Statistics and verdict rules of tfrobust.verdicts, checked against independent formulas and known effects."""

import math
import random

import numpy as np
import pytest

from tfrobust import verdicts as v

# Two-sided 95% t quantiles t_{0.975, df} from a printed table (e.g. NIST/SEMATECH handbook, table 1.3.6.7.2).
T_TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 10: 2.228, 20: 2.086, 30: 2.042}


@pytest.mark.parametrize("df,expected", sorted(T_TABLE.items()))
def test_t_quantile_matches_printed_table(df, expected):
  assert v.t_quantile(0.975, df) == pytest.approx(expected, abs=6e-4)


def test_t_quantile_closed_forms():
  # df=1 is Cauchy: t = tan(π(p − 1/2)); df=2: t = (2p − 1)·sqrt(2 / (4p(1 − p))).
  for p in (0.6, 0.9, 0.975, 0.995):
    assert v.t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
    assert v.t_quantile(p, 2) == pytest.approx((2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p))), rel=1e-9)
  assert v.t_quantile(0.025, 7) == pytest.approx(-v.t_quantile(0.975, 7))


def test_t_functions_match_scipy_when_installed():
  stats = pytest.importorskip("scipy.stats")
  for df in (1, 2, 3, 4, 7, 15, 60, 500):
    for p in (0.55, 0.9, 0.975, 0.999):
      assert v.t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-8)
    for t in (-3.0, -0.4, 0.0, 1.1, 5.0):
      assert v.t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-12)


def test_mean_ci_by_hand():
  xs = [0.1, -0.3, 0.25, 0.05]
  est = v.mean_ci(xs)
  mean = np.mean(xs)
  half = 3.182 * np.std(xs, ddof=1) / 2.0  # t_{0.975, 3} · sd / √4
  assert est.n == 4 and est.mean == pytest.approx(mean)
  assert est.lo == pytest.approx(mean - half, abs=1e-4) and est.hi == pytest.approx(mean + half, abs=1e-4)
  assert v.mean_ci([]) is None
  one = v.mean_ci([0.4])
  assert one.mean == 0.4 and not one.has_ci


def test_mean_ci_matches_scipy_when_installed():
  stats = pytest.importorskip("scipy.stats")
  rng = np.random.default_rng(3)
  for n in (2, 3, 5, 12):
    xs = rng.normal(0.2, 0.7, size=n)
    est = v.mean_ci(list(xs), level=0.9)
    lo, hi = stats.t.interval(0.9, n - 1, loc=np.mean(xs), scale=stats.sem(xs))
    assert (est.lo, est.hi) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))


def test_ols_slope_matches_polyfit():
  rng = np.random.default_rng(0)
  x = np.log2([16, 32, 64, 128, 256])
  y = rng.normal(size=5)
  assert v.ols_slope(list(x), list(y)) == pytest.approx(np.polyfit(x, y, 1)[0])
  assert v.ols_slope([4.0, 4.0], [1.0, 2.0]) is None


def est(lo, hi, n=3):
  return v.Estimate((lo + hi) / 2, lo, hi, n, 1.0)


@pytest.mark.parametrize("kind,lo,hi,expected", [
    ("decrease", -0.05, -0.01, v.SUPPORTED),
    ("decrease", -0.005, 0.02, v.NOT_SUPPORTED),   # excludes any drop of ≥ 1 point
    ("decrease", -0.03, 0.01, v.INCONCLUSIVE),
    ("decrease", 0.01, 0.03, v.NOT_SUPPORTED),     # opposite direction
    ("increase", 0.01, 0.5, v.SUPPORTED),
    ("increase", -0.02, 0.005, v.NOT_SUPPORTED),
    ("increase", -0.2, 0.3, v.INCONCLUSIVE),
    ("equivalent", -0.008, 0.006, v.SUPPORTED),
    ("equivalent", -0.04, -0.02, v.NOT_SUPPORTED),
    ("equivalent", 0.02, 0.03, v.NOT_SUPPORTED),
    ("equivalent", -0.015, 0.0, v.INCONCLUSIVE),   # straddles the margin
    ("noninferior", -0.005, 0.04, v.SUPPORTED),
    ("noninferior", -0.05, -0.02, v.NOT_SUPPORTED),
    ("noninferior", -0.02, 0.01, v.INCONCLUSIVE),
    ("positive", 0.005, 0.03, v.SUPPORTED),
    ("positive", -0.004, 0.008, v.NOT_SUPPORTED),
    ("positive", -0.01, 0.05, v.INCONCLUSIVE),
])
def test_decide_rules(kind, lo, hi, expected):
  assert v.decide(kind, est(lo, hi), margin=0.01) == expected


def test_decide_needs_two_seeds_and_a_measurement():
  assert v.decide("equivalent", v.Estimate(0.0, None, None, 1, None), margin=0.01) == v.INCONCLUSIVE
  assert v.decide("equivalent", est(-0.001, 0.001, n=1), margin=0.01, min_seeds=2) == v.INCONCLUSIVE
  assert v.decide("decrease", None, margin=0.01) == v.NOT_MEASURED


def test_combine():
  S, N, I, M, D = v.SUPPORTED, v.NOT_SUPPORTED, v.INCONCLUSIVE, v.NOT_MEASURED, v.DESCRIPTIVE
  assert v.combine([S, S, D]) == S
  assert v.combine([S, S, M, D]) == I  # an unmeasured component (robustness, curvature) never lets a claim pass
  assert v.combine([S, I]) == I
  assert v.combine([S, N, I]) == N
  assert v.combine([M, D]) == I


# ---------------------------------------------------------------------------------------------- known effects

BATCHES = (16, 32, 64, 128, 256)


def synthetic(*, seeds=(0, 1, 2), fixed_adv=-0.05, ratio_adv=0.0, fixed_clean=-0.03, ratio_clean=0.0,
              fixed_eig=0.5, mom_fixed=0.06, mom_ratio=0.01, noise=0.004, seed=0):
  """Points with known slopes per doubling of B and known momentum effects (accuracies as fractions)."""
  rng = random.Random(seed)
  pts = []
  for regime, adv_k, clean_k, eig_k, mom in (("fixed_lr", fixed_adv, fixed_clean, fixed_eig, mom_fixed),
                                             ("constant_ratio", ratio_adv, ratio_clean, 0.0, mom_ratio)):
    for s in seeds:
      for mu in (0.0, 0.9):
        for b in BATCHES:
          d = math.log2(b / 16)
          bump = mom if mu else 0.0
          pts.append(v.Point(regime, b, mu, s, clean=0.9 + clean_k * d + bump + rng.gauss(0, noise),
                             adv=0.5 + adv_k * d + bump + rng.gauss(0, noise),
                             top_eig=10 * 2 ** (eig_k * d + rng.gauss(0, 0.02))))
  return pts


def by_key(claims):
  return {c.key: c for claim in claims for c in claim.components} | {c.key: c for c in claims}


def test_known_effects_give_the_expected_verdicts():
  r = by_key(v.evaluate(synthetic()))
  assert r["C1.adv"].estimate.mean == pytest.approx(-0.05, abs=0.003)
  assert r["C1.eig"].estimate.mean == pytest.approx(0.5, abs=0.03)
  assert r["C1"].verdict == v.SUPPORTED
  assert r["C2.adv"].verdict == v.SUPPORTED and r["C2"].verdict == v.SUPPORTED
  assert r["C2.spread"].verdict == v.DESCRIPTIVE
  assert r["C3.adv"].estimate.mean == pytest.approx(0.05, abs=0.004)
  assert r["C3"].verdict == v.SUPPORTED


def test_a_drop_at_constant_ratio_is_not_supported():
  r = by_key(v.evaluate(synthetic(ratio_adv=-0.04)))
  assert r["C2.adv"].verdict == v.NOT_SUPPORTED and r["C2"].verdict == v.NOT_SUPPORTED


def test_one_seed_is_inconclusive():
  r = by_key(v.evaluate(synthetic(seeds=(0,))))
  for key in ("C1", "C2", "C3", "C1.adv", "C2.adv", "C3.adv"):
    assert r[key].verdict == v.INCONCLUSIVE, key


def test_flat_at_fixed_lr_is_not_c1_and_equal_momentum_effects_are_not_c3():
  r = by_key(v.evaluate(synthetic(seeds=range(5), fixed_adv=0.0, fixed_clean=0.0, fixed_eig=0.0,
                                  mom_fixed=0.03, mom_ratio=0.03, noise=0.002)))
  assert r["C1.adv"].verdict == v.NOT_SUPPORTED and r["C1.eig"].verdict == v.NOT_SUPPORTED
  assert r["C3.adv"].verdict == v.NOT_SUPPORTED and r["C3"].verdict == v.NOT_SUPPORTED


def test_opposite_and_larger_momentum_effect_at_constant_ratio_is_not_c3():
  r = by_key(v.evaluate(synthetic(mom_fixed=0.02, mom_ratio=-0.05)))
  assert r["C3.adv"].estimate.mean == pytest.approx(0.02 - 0.05, abs=0.008)
  assert r["C3.adv"].verdict == v.NOT_SUPPORTED


def test_per_seed_slopes_against_polyfit_and_missing_points():
  pts = synthetic(noise=0.02, seed=5)
  pts = [p for p in pts if not (p.seed == 1 and p.momentum == 0.9 and p.batch_size == 64)]
  got = v.per_seed_slopes(pts, "fixed_lr", "adv")
  want = []
  for s in (0, 1, 2):
    slopes = []
    for mu in (0.0, 0.9):
      rows = sorted((p.batch_size, p.adv) for p in pts if (p.regime, p.seed, p.momentum) == ("fixed_lr", s, mu))
      slopes.append(np.polyfit(np.log2([b for b, _ in rows]), [a for _, a in rows], 1)[0])
    want.append(np.mean(slopes))
  assert got == pytest.approx(want)


def test_noisy_large_effect_is_estimated_within_its_interval():
  # With 5 seeds the 95% interval should cover the true slope; fixed RNG seed, so this is deterministic.
  r = by_key(v.evaluate(synthetic(seeds=range(5), noise=0.03, seed=11)))
  e = r["C1.adv"].estimate
  assert e.lo < -0.05 < e.hi and e.n == 5
