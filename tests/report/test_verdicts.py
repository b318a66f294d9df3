"""Statistics (report/stats.py), claims and their rules (report/claims.py) and the claims judged on known effects
(report/verdicts.py), checked against printed tables, independent formulas and synthetic truths."""

import math
import random

import numpy as np
import pytest

from tfrobust.report import claims as c
from tfrobust.report import effects, quality, stats
from tfrobust.report import verdicts as v
from tfrobust.errors import UsageError

# Two-sided 95% t quantiles t_{0.975, df} from a printed table (NIST/SEMATECH handbook, table 1.3.6.7.2).
T_TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 10: 2.228, 20: 2.086, 30: 2.042}


@pytest.mark.parametrize("df,expected", sorted(T_TABLE.items()))
def test_t_quantile_matches_printed_table(df, expected):
  assert stats.t_quantile(0.975, df) == pytest.approx(expected, abs=6e-4)


def test_mean_ci_by_hand():
  xs = [0.1, -0.3, 0.25, 0.05]
  est = stats.mean_ci(xs)
  mean = np.mean(xs)
  half = 3.182 * np.std(xs, ddof=1) / 2.0  # t_{0.975, 3} · sd / √4
  assert est.n == 4 and est.mean == pytest.approx(mean)
  assert est.lo == pytest.approx(mean - half, abs=1e-4) and est.hi == pytest.approx(mean + half, abs=1e-4)
  assert stats.mean_ci([]) is None
  one = stats.mean_ci([0.4])
  assert one.mean == 0.4 and not one.has_ci
  same = stats.mean_ci([0.2, 0.2, 0.2])
  assert (same.lo, same.hi) == (pytest.approx(0.2), pytest.approx(0.2))


def test_clip_keeps_accuracy_intervals_in_0_1():
  est = stats.mean_ci([0.99, 0.995])  # 2 seeds: t = 12.7, the raw interval runs far above 1
  assert est.hi > 1.0
  cut = stats.clip(est)
  assert cut.hi == 1.0 and cut.lo == pytest.approx(est.lo) and cut.mean == est.mean


def test_ols_weights_match_polyfit():
  rng = np.random.default_rng(0)
  x = np.log2([16, 32, 64, 128, 256])
  y = rng.normal(size=5)
  assert stats.ols_slope(list(x), list(y)) == pytest.approx(np.polyfit(x, y, 1)[0])
  assert stats.ols_weights([4.0, 4.0]) is None


def test_bootstrap_is_deterministic_and_test_set_noise_widens_it():
  seeds = {s: [(1.0, 0.8 + 0.01 * s, 100)] for s in range(4)}  # effect = one accuracy per seed
  a = stats.bootstrap_interval(seeds, key="k")
  assert a == stats.bootstrap_interval(seeds, key="k")
  no_test_noise = stats.bootstrap_interval({s: [(1.0, y, None)] for s, [(_, y, _)] in seeds.items()}, key="k")
  many = stats.bootstrap_interval({s: [(1.0, y, 10 ** 7)] for s, [(_, y, _)] in seeds.items()}, key="k")
  assert a[1] - a[0] > 3 * (no_test_noise[1] - no_test_noise[0])
  # Binomial noise of sd √(0.8·0.2/100)/2 on the mean of 4 seeds: the interval is about ±4 points wide.
  assert 0.05 < a[1] - a[0] < 0.12
  assert many == pytest.approx(no_test_noise, abs=2e-3)
  # Seeds only: the percentile interval lies within the range of the seeds' values.
  assert 0.8 <= no_test_noise[0] <= no_test_noise[1] <= 0.83
  assert stats.bootstrap_interval({0: [(1.0, 0.5, 100)]}, key="k") is None
  assert stats.hull((0.0, 1.0), None, (-1.0, 0.5)) == (-1.0, 1.0) and stats.hull(None) is None


# ---------------------------------------------------------------------------------------------- rules

@pytest.mark.parametrize("kind,est,lo,hi,expected", [
    (c.DECREASE, -3.0, -4.0, -2.0, c.SUPPORTED),
    (c.DECREASE, -0.1, -0.5, 0.3, c.NEGLIGIBLE),        # consistent with no drop that matters
    (c.DECREASE, -0.3, -0.6, -0.05, c.NEGLIGIBLE),      # a real but tiny drop: still negligible
    (c.DECREASE, -0.8, -1.5, -0.1, c.INCONCLUSIVE),     # below 0 but estimate smaller than the margin
    (c.DECREASE, -2.0, -4.0, 0.5, c.INCONCLUSIVE),      # straddles 0
    (c.DECREASE, 2.0, 1.5, 2.5, c.NOT_SUPPORTED),       # the other way
    (c.INCREASE, 0.5, 0.3, 0.7, c.SUPPORTED),
    (c.INCREASE, 0.02, -0.05, 0.08, c.NEGLIGIBLE),
    (c.INCREASE, -0.4, -0.6, -0.2, c.NOT_SUPPORTED),
    (c.POSITIVE, 3.0, 1.0, 5.0, c.SUPPORTED),
    (c.POSITIVE, 3.0, -1.0, 5.0, c.INCONCLUSIVE),
    (c.EQUIVALENT, 0.1, -0.8, 0.6, c.SUPPORTED),
    (c.EQUIVALENT, -3.0, -4.0, -2.0, c.NOT_SUPPORTED),
    (c.EQUIVALENT, 2.0, 1.0, 3.0, c.NOT_SUPPORTED),
    (c.EQUIVALENT, -0.5, -1.5, 0.0, c.INCONCLUSIVE),   # straddles the margin
])
def test_decide(kind, est, lo, hi, expected):
  verdict, why = c.decide(kind, est, (lo, hi), margin=1.0 if kind != c.INCREASE else 0.1, n_seeds=3)
  assert verdict == expected, why
  assert "CI [" in why


def test_decide_needs_seeds_and_a_measurement():
  assert c.decide(c.EQUIVALENT, 0.0, (-0.1, 0.1), margin=1.0, n_seeds=2) == (c.INCONCLUSIVE,
                                                                            "too few seeds: 2 < 3")
  assert c.decide(c.DECREASE, None, None, margin=1.0, n_seeds=0)[0] == c.NOT_MEASURED
  assert c.MIN_SEEDS == 3 and stats.t_quantile(0.975, c.MIN_SEEDS - 2) > 12


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, math.nan, math.inf, None, "1"])
def test_bad_margins_raise(bad):
  with pytest.raises(UsageError):
    c.decide(c.DECREASE, -3.0, (-4.0, -2.0), margin=bad, n_seeds=3)
  with pytest.raises(UsageError):
    c.rule_text(c.EQUIVALENT, margin=bad, unit="points")
  with pytest.raises(UsageError):
    v.judge_claims(synthetic(), acc_margin=bad)


def test_rule_text_states_the_numbers_decide_uses():
  text = c.rule_text(c.DECREASE, margin=1.0, unit="points per doubling of B")
  assert "at least a drop of 1 point per doubling of B" in text and "inside ±1 point" in text
  assert "inside ±2 points" in c.rule_text(c.EQUIVALENT, margin=2.0, unit="points")
  assert "fewer than 3 seeds" in text
  assert "inside ±0.5 x" in c.rule_text(c.EQUIVALENT, margin=0.5, unit="x")


def test_combine():
  S, N, G, I, M, A = c.SUPPORTED, c.NOT_SUPPORTED, c.NEGLIGIBLE, c.INCONCLUSIVE, c.NOT_MEASURED, c.NOT_APPLICABLE
  assert c.combine([S, S, A]) == S
  assert c.combine([S, S, M]) == I  # an unmeasured component never lets a claim pass
  assert c.combine([S, G]) == N  # negligible counts as not supported
  assert c.combine([S, N, I]) == N
  assert c.combine([A]) == I


# ---------------------------------------------------------------------------------------------- known effects

BATCHES = (16, 32, 64, 128, 256)


def synthetic(*, seeds=(0, 1, 2), fixed_adv=-0.05, ratio_adv=0.0, fixed_clean=-0.03, ratio_clean=0.0,
              fixed_eig=0.5, mom_fixed=0.06, mom_ratio=0.01, noise=0.004, seed=0, n=None, **point_kw):
  """Observations with known slopes per doubling of B and known momentum effects (accuracies as fractions)."""
  rng = random.Random(seed)
  pts = []
  for regime, adv_k, clean_k, eig_k, mom in (("fixed_lr", fixed_adv, fixed_clean, fixed_eig, mom_fixed),
                                             ("constant_ratio", ratio_adv, ratio_clean, 0.0, mom_ratio)):
    for s in seeds:
      for mu in (0.0, 0.9):
        for b in BATCHES:
          d = math.log2(b / 16)
          bump = mom if mu else 0.0
          pts.append(v.Observation(regime, b, mu, s, clean=0.9 + clean_k * d + bump + rng.gauss(0, noise),
                                   adv=0.5 + adv_k * d + bump + rng.gauss(0, noise),
                                   top_eig=10 * 2 ** (eig_k * d + rng.gauss(0, 0.02)),
                                   trial_id=f"{regime}-b{b}-m{mu}-s{s}", n_clean=n, n_adv=n, **point_kw))
  return pts


def rows_of(points, **kw):
  rows = v.judge_claims(points, **kw)
  return lambda claim, comp="claim", control="all": v.find(rows, claim, comp, control)


def test_known_effects_give_the_expected_verdicts():
  r = rows_of(synthetic())
  assert r("C1", "adv")["estimate"] == pytest.approx(-5.0, abs=0.3)  # points per doubling
  assert r("C1", "eig")["estimate"] == pytest.approx(0.5, abs=0.03)
  assert r("C1")["verdict"] == c.SUPPORTED
  assert r("C2", "adv")["verdict"] == c.SUPPORTED and r("C2")["verdict"] == c.SUPPORTED
  assert r("C3", "adv")["estimate"] == pytest.approx(5.0, abs=0.4)
  assert r("C3")["verdict"] == c.SUPPORTED
  assert not r("C1")["fragile"]


def test_negligible_drop_is_not_supported_and_a_real_drop_is():
  tiny = rows_of(synthetic(fixed_clean=-0.001, noise=0.002, n=2000))
  assert tiny("C1", "clean")["estimate"] == pytest.approx(-0.1, abs=0.1)
  assert tiny("C1", "clean")["verdict"] == c.NEGLIGIBLE and tiny("C1")["verdict"] == c.NOT_SUPPORTED
  real = rows_of(synthetic(fixed_clean=-0.03, noise=0.002, n=2000))
  assert real("C1", "clean")["verdict"] == c.SUPPORTED


def test_flat_is_c2_but_not_c1():
  r = rows_of(synthetic(fixed_adv=0.0, fixed_clean=0.0, fixed_eig=0.0, noise=0.002, n=5000))
  for comp in ("clean", "adv"):
    assert r("C1", comp)["verdict"] == c.NEGLIGIBLE and r("C2", comp)["verdict"] == c.SUPPORTED
  assert r("C1", "eig")["verdict"] == c.NEGLIGIBLE
  assert r("C1")["verdict"] == c.NOT_SUPPORTED and r("C2")["verdict"] == c.SUPPORTED


def test_a_drop_at_constant_ratio_is_not_c2():
  r = rows_of(synthetic(ratio_adv=-0.04, n=5000))
  assert r("C2", "adv")["verdict"] == c.NOT_SUPPORTED and r("C2")["verdict"] == c.NOT_SUPPORTED


def test_c3_signs_are_fixed_by_the_claim_not_by_the_data():
  # Momentum helps at constant η/B only: E = 0 − 5 points < 0, wherever the sample means point.
  assert rows_of(synthetic(mom_fixed=0.0, mom_ratio=0.05))("C3", "adv")["verdict"] == c.NOT_SUPPORTED
  # Momentum hurts at a fixed η: E = −5 < 0, not support for "momentum helps more at a fixed η".
  r = rows_of(synthetic(mom_fixed=-0.05, mom_ratio=0.0))
  assert r("C3", "adv")["estimate"] == pytest.approx(-5.0, abs=0.4) and r("C3")["verdict"] == c.NOT_SUPPORTED
  assert rows_of(synthetic(mom_fixed=0.03, mom_ratio=0.03, noise=0.001))("C3", "adv")["verdict"] == c.NEGLIGIBLE


def test_two_seeds_are_too_few():
  r = rows_of(synthetic(seeds=(0, 1)))
  row = r("C1", "adv")
  assert row["verdict"] == c.INCONCLUSIVE and row["why"] == "too few seeds: 2 < 3" and row["ci_t"] is not None
  assert [r(k)["verdict"] for k in ("C1", "C2", "C3")] == [c.INCONCLUSIVE] * 3


def test_test_set_sampling_can_make_equivalence_inconclusive():
  few = rows_of(synthetic(noise=0.001, n=100))("C2", "adv")
  lo_t, hi_t = few["ci_t"]
  assert -1.0 < lo_t and hi_t < 1.0  # seeds alone would call it equivalent ...
  assert few["verdict"] == c.INCONCLUSIVE and few["ci"] == pytest.approx(
      [min(lo_t, few["ci_bootstrap"][0]), max(hi_t, few["ci_bootstrap"][1])])  # ... the union does not


def test_negative_lambda_max_is_listed_not_dropped_silently():
  pts = synthetic()
  pts[3] = v.Observation(**{**pts[3].__dict__, "top_eig": -0.25})
  for control in ("all", "trained"):
    row = rows_of(pts)("C1", "eig", control)
    assert {"trial_id": pts[3].trial_id, "reason": "λ_max = -0.25 ≤ 0 cannot enter the log2 fit"} in row["excluded"]
  assert rows_of(pts)("C1", "eig", "worst_case")["verdict"] == c.NOT_APPLICABLE


def test_collapsed_points_leave_all_and_enter_worst_case_at_chance():
  pts = synthetic(ratio_adv=0.0, noise=0.002, n=5000)
  pts = [v.Observation(**{**p.__dict__, "kind": quality.COLLAPSED, "reason": "collapsed: clean accuracy 0.1",
                          "clean": 0.1, "adv": 0.0}) if p.regime == "constant_ratio" and p.batch_size == 256 else p
         for p in pts]
  r = rows_of(pts)
  all_row, worst = r("C2", "adv"), r("C2", "adv", "worst_case")
  collapsed = {p.trial_id for p in pts if p.kind == quality.COLLAPSED}
  assert collapsed <= {e["trial_id"] for e in all_row["excluded"]}
  assert not collapsed & {e["trial_id"] for e in worst["excluded"]}
  assert all_row["verdict"] == c.SUPPORTED and worst["verdict"] == c.NOT_SUPPORTED
  assert worst["estimate"] < -5  # 0.5 → chance 0.1 at B = 256 drags the slope down
  assert r("C2")["fragile"] and any("worst_case" in s for s in r("C2")["fragile_reasons"])


def test_untrained_large_batches_make_c1_fragile():
  """The under-training confound: accuracy falls only where B is too large to train in the budget."""
  pts = []
  for p in synthetic(fixed_clean=0.0, fixed_adv=0.0, noise=0.002, n=5000):
    if p.regime == "fixed_lr" and p.batch_size >= 128:
      p = v.Observation(**{**p.__dict__, "clean": p.clean - 0.1, "adv": p.adv - 0.1, "trained": False,
                           "trained_reason": "final training loss 0.9 > 3 × 0.01"})
    pts.append(p)
  r = rows_of(pts)
  assert r("C1", "clean")["verdict"] == c.SUPPORTED  # on every trial, B seems to hurt ...
  assert r("C1", "clean", "trained")["verdict"] == c.NEGLIGIBLE  # ... on trained ones it does not
  assert r("C1")["fragile"] and "C1.clean: supported on all, negligible on trained" in r("C1")["fragile_reasons"][0]


def test_per_seed_slopes_against_polyfit_with_a_missing_point():
  pts = [p for p in synthetic(noise=0.02, seed=5)
         if not (p.seed == 1 and p.momentum == 0.9 and p.batch_size == 64)]
  items, _ = effects.select(pts, "adv", effects.ALL, ("fixed_lr",))
  got = stats.seed_values(effects.slope_terms(items))
  want = []
  for s in (0, 1, 2):
    slopes = []
    for mu in (0.0, 0.9):
      rows = sorted((p.batch_size, p.adv) for p in pts if (p.regime, p.seed, p.momentum) == ("fixed_lr", s, mu))
      slopes.append(np.polyfit(np.log2([b for b, _ in rows]), [a for _, a in rows], 1)[0])
    want.append(np.mean(slopes))
  assert got == pytest.approx(want)


def test_noisy_large_effect_is_estimated_within_its_interval():
  # With 5 seeds the interval should cover the true slope; fixed RNG seed, so this is deterministic.
  row = rows_of(synthetic(seeds=range(5), noise=0.03, seed=11))("C1", "adv")
  assert row["ci"][0] < -5.0 < row["ci"][1] and row["n_seeds"] == 5


def test_worst_case_scores_adversarial_accuracy_at_zero_not_chance():
  pts = synthetic(noise=0.002, n=5000)
  pts = [v.Observation(**{**p.__dict__, "kind": quality.DIVERGED, "reason": "diverged", "clean": None, "adv": None})
         if p.regime == "fixed_lr" and p.batch_size == 256 and p.seed == 0 else p for p in pts]
  assert effects.value(next(p for p in pts if p.kind == quality.DIVERGED), "adv", effects.WORST_CASE)[0] == 0.0
  assert effects.value(next(p for p in pts if p.kind == quality.DIVERGED), "clean", effects.WORST_CASE)[0] == 0.1


def test_trials_no_effect_can_use_are_listed_not_dropped():
  pts = synthetic(seeds=(0, 1, 2, 3))
  # Seed 3 keeps only B = 16 at μ = 0.9 in fixed_lr: no slope for that momentum, and no μ = 0 partner for C3.
  pts = [p for p in pts if not (p.seed == 3 and p.regime == "fixed_lr" and
                                (p.momentum == 0.0 or p.batch_size != 16))]
  r = rows_of(pts)
  lone = "fixed_lr-b16-m0.9-s3"
  slope_reasons = {e["trial_id"]: e["reason"] for e in r("C1", "adv")["excluded"]}
  assert "no slope" in slope_reasons[lone]
  c3_reasons = {e["trial_id"]: e["reason"] for e in r("C3", "adv")["excluded"]}
  assert "partner" in c3_reasons[lone]
  # Seed 3's constant_ratio trials have no fixed_lr pair: listed for C3 too.
  assert "constant_ratio-b64-m0.9-s3" in c3_reasons
  assert r("C1", "adv")["n_seeds"] == 3 and r("C3", "adv")["n_seeds"] == 3
