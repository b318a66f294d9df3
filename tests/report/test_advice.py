"""report/advice.py: what an undecided component needs (seeds, or test examples where seeds cannot help), and the
C2 case whose per-seed contrasts tie by count but differ by example (issue: zero-width intervals)."""

import math

import numpy as np
import pytest

from tfrobust.report import advice, claims, effects, paired, verdicts

C2_CLEAN = next(c for c in claims.COMPONENTS if (c.claim, c.name) == ("C2", "clean"))
C3_ADV = next(c for c in claims.COMPONENTS if (c.claim, c.name) == ("C3", "adv"))


def _iv(sd_seed, sd_own, sd_shared, n_seeds=3, n=360, q_shared=paired.Z):
  return paired.Interval(0.0, -1.0, 1.0, 1.0, n_seeds, sd_seed=sd_seed, sd_own=sd_own, sd_shared=sd_shared,
                         q_shared=q_shared, n_examples=n)


def test_a_c2_study_whose_contrasts_tie_by_count_is_not_supported():
  """Three seeds, each B = 64 network +6 examples net over B = 16 (8 fixed, 2 broken, different examples per seed);
  every B = 16 network identical. The interval was [+1.67, +1.67] and C2 supported."""
  n = 360
  base = np.arange(n) >= 90  # 75% right
  points = []
  for s in range(3):
    c = base.copy()
    c[s * 10:s * 10 + 8] = True
    c[90 + s * 10:90 + s * 10 + 2] = False
    for b, ex in ((16, base), (64, c)):
      points.append(verdicts.Observation(effects.RATIO, b, 0.9, s, float(ex.mean()), float(ex.mean()), 1.0,
                                         trial_id=f"b{b}-s{s}", clean_ex=ex, adv_ex=ex, n_clean=n, n_adv=n))
  row = verdicts.judge(C2_CLEAN, points, effects.ALL, claims.C2_MARGIN)
  assert row["estimate"] == pytest.approx(100 * 6 / n)
  assert row["ci"][1] - row["ci"][0] > 1.0 and row["verdict"] != claims.SUPPORTED
  assert row["advice"] is not None and "support" in row["advice"]["goals"]


def test_seeds_cannot_decide_what_the_shared_test_set_forbids():
  """digits C3.adv: shared sd 0.55 points against a 1-point margin: no seed count gives 80% power; ~840+ test
  examples would (the shared sd scales as 1/√n; at infinitely many seeds power needs margin ≥ (z + z_0.8)·sd)."""
  iv = _iv(0.3, 0.2, 0.55)
  parts = [{"name": "E", "judged": True}]
  adv = advice.advise(C3_ADV, claims.INCONCLUSIVE, parts, [iv], 1.0)
  g = adv["goals"]["support"]
  assert g["seeds"] is None and "never by seeds" in adv["text"] and "never by seeds" in advice.short(adv)
  need = g["examples_needed"]
  assert need[6] > need[10] > need[20] >= 360 * (0.55 * (paired.Z + 0.8416) / 1.0) ** 2


def test_decided_components_get_no_advice():
  iv = _iv(0.3, 0.2, 0.1)
  parts = [{"name": "E", "judged": True}]
  for v in (claims.SUPPORTED, claims.CONTRADICTED, claims.NEGLIGIBLE, claims.NOT_MEASURABLE):
    assert advice.advise(C3_ADV, v, parts, [iv], 1.0) is None
    assert advice.short(None) == "—"


def test_the_seed_range_runs_to_sigma_s_upper_bound_and_costs_trials():
  assert advice.sigma_upper(1.0, 3) == pytest.approx(2.12, abs=0.01)  # 2 df: the 80% upper bound
  iv = _iv(1.5, 0.2, 0.1)
  adv = advice.advise(C3_ADV, claims.INCONCLUSIVE, [{"name": "E", "judged": True}], [iv], 1.0, trials_per_seed=20,
                      trial_seconds=3.6)
  lo, hi = adv["goals"]["support"]["seeds"]
  assert 3 <= lo < hi
  assert adv["goals"]["support"]["trials"][0] == 20 * lo
  assert adv["goals"]["support"]["hours"][0] == pytest.approx(20 * lo * 3.6 / 3600)


def test_equivalence_gets_the_power_to_support_at_zero_and_to_contradict():
  iv = _iv(0.8, 0.5, 0.2)
  parts = [{"name": "B = 64", "judged": True}]
  adv = advice.advise(C2_CLEAN, claims.INCONCLUSIVE, parts, [iv], 2.0)
  assert set(adv["goals"]) == {"support", "contradict"}
  # support at 0 needs the whole interval inside ±margin: h < margin, so more seeds than contradiction at 2× margin
  # (which needs only h < margin with the estimate one margin beyond it) ... both finite here
  assert adv["goals"]["support"]["seeds"][0] is not None and adv["goals"]["contradict"]["seeds"][0] is not None


def test_joint_power_over_parts_needs_more_seeds_than_one_part():
  iv = _iv(1.0, 0.3, 0.1)
  one = advice.seeds_needed(claims.DECREASE, "support", [iv], 1.0)
  four = advice.seeds_needed(claims.DECREASE, "support", [iv] * 4, 1.0)
  assert four > one


def test_family_quantiles_are_recomputed_at_each_seed_count():
  """A family's 3-seed multiplier applied at every seed count said "> 200" where ≈ 75 seeds suffice: at many seeds
  the family's seed multiplier tends to its z multiplier, not to the 3-seed t inflation."""
  q_z = 2.5  # a family of a few correlated contrasts
  assert paired.family_t(q_z, 200) == pytest.approx(q_z, rel=0.02)
  assert paired.family_t(q_z, 3) > 2 * q_z
  assert paired.family_t(paired.Z, 5) == pytest.approx(paired.t_quantile(0.975, 4))
  iv = _iv(2.0, 0.3, 0.1, q_shared=q_z)
  need = advice.seeds_needed(claims.EQUIVALENT, "contradict", [iv], 2.0)
  assert need is not None and need < 60
