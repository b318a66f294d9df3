"""Claims and their rules (report/claims.py), the figures' t-interval (report/stats.py), and components judged on
Observations with known effects (report/verdicts.py, report/effects.py)."""

import math

import numpy as np
import pytest

from tfrobust.errors import UsageError
from tfrobust.report import claims as c, effects, quality, stats, synthetic_study
from tfrobust.report import verdicts as v

# Two-sided 95% t quantiles t_{0.975, df} from a printed table (NIST/SEMATECH handbook, table 1.3.6.7.2).
T_TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 10: 2.228, 20: 2.086, 30: 2.042}


@pytest.mark.parametrize("df,expected", sorted(T_TABLE.items()))
def test_t_quantile_matches_printed_table(df, expected):
  assert stats.t_quantile(0.975, df) == pytest.approx(expected, abs=6e-4)


def test_mean_ci_by_hand():
  xs = [0.1, -0.3, 0.25, 0.05]
  est = stats.mean_ci(xs)
  half = 3.182 * np.std(xs, ddof=1) / 2.0
  assert est.lo == pytest.approx(np.mean(xs) - half, abs=1e-4) and est.hi == pytest.approx(np.mean(xs) + half, abs=1e-4)
  assert stats.mean_ci([]) is None and not stats.mean_ci([0.4]).has_ci


@pytest.mark.parametrize("kind,lo,hi,expected", [
    (c.DECREASE, -4.0, -2.0, c.SUPPORTED),
    (c.DECREASE, -4.0, -0.9, c.DIRECTION_ONLY),      # beyond 0, not wholly beyond the margin
    (c.DECREASE, -0.6, -0.05, c.NEGLIGIBLE),        # a real but tiny drop
    (c.DECREASE, -0.5, 0.3, c.NEGLIGIBLE),
    (c.DECREASE, -4.0, 0.5, c.INCONCLUSIVE),
    (c.DECREASE, 1.5, 2.5, c.CONTRADICTED),
    (c.INCREASE, 0.3, 0.7, c.SUPPORTED),
    (c.INCREASE, -0.6, -0.2, c.CONTRADICTED),
    (c.POSITIVE, 1.2, 5.0, c.SUPPORTED),
    (c.POSITIVE, 0.5, 5.0, c.DIRECTION_ONLY),
    (c.EQUIVALENT, -0.8, 0.6, c.SUPPORTED),
    (c.EQUIVALENT, -4.0, -2.0, c.CONTRADICTED),
    (c.EQUIVALENT, -1.5, 0.0, c.INCONCLUSIVE),
])
def test_decide(kind, lo, hi, expected):
  verdict, why = c.decide(kind, (lo, hi), margin=1.0 if kind != c.INCREASE else 0.1, n_seeds=3)
  assert verdict == expected, why
  assert "CI [" in why


def test_decide_needs_seeds_and_a_measurement():
  assert c.decide(c.EQUIVALENT, (-0.1, 0.1), margin=1.0, n_seeds=2) == (c.INCONCLUSIVE, "too few seeds: 2 < 3")
  assert c.decide(c.DECREASE, None, margin=1.0, n_seeds=0)[0] == c.NOT_MEASURED


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, math.nan, math.inf, None, "1"])
def test_bad_margins_raise(bad):
  with pytest.raises(UsageError):
    c.decide(c.DECREASE, (-4.0, -2.0), margin=bad, n_seeds=3)
  with pytest.raises(UsageError):
    c.rule_text(c.EQUIVALENT, margin=bad, unit="points")
  with pytest.raises(UsageError):
    v.judge_claims([], acc_margin=bad)


def test_rule_text_states_the_numbers_decide_uses():
  text = c.rule_text(c.DECREASE, margin=1.0, unit="points per doubling of B")
  assert "supported when the whole 95% interval lies below −1 point per doubling of B" in text
  assert "inside ±1 point" in text and "fewer than 3 seeds" in text
  assert "inside ±2 points" in c.rule_text(c.EQUIVALENT, margin=2.0, unit="points")


def test_combine_and_parts():
  S, G, X, D, I, M, A = (c.SUPPORTED, c.NEGLIGIBLE, c.CONTRADICTED, c.DIRECTION_ONLY, c.INCONCLUSIVE,
                         c.NOT_MEASURED, c.NOT_APPLICABLE)
  assert c.combine([S, S, A]) == S and c.combine([S, S, M]) == I and c.combine([S, G]) == c.NOT_SUPPORTED
  assert c.combine([S, D]) == I and c.combine([S, X, I]) == c.NOT_SUPPORTED and c.combine([A]) == I
  assert c.combine_parts([S, S]) == S and c.combine_parts([S, X]) == X and c.combine_parts([S, D, G]) == G


def sim(truth=0.0, seed=0):
  return synthetic_study.simulate(truth, np.random.default_rng(seed))


def test_known_effects_on_simulated_studies():
  rows = v.judge_claims(sim(3.0), controls=(effects.ALL,))
  r = lambda claim, comp: v.find(rows, claim, comp)  # noqa: E731
  assert r("C1", "clean")["verdict"] == c.SUPPORTED
  assert r("C1", "clean")["estimate"] == pytest.approx(-3.0, abs=0.7)
  assert {p["name"] for p in r("C1", "clean")["parts"] if p["judged"]} == {"μ = 0", "μ = 0.9"}
  assert c.SUPPORTED not in (r("C2", "clean")["verdict"], r("C2", "adv")["verdict"])  # 6 points at B = 256
  assert r("C2", "clean")["estimate"] == pytest.approx(-6.0, abs=2.0)
  assert r("C3", "clean")["estimate"] == pytest.approx(3.0, abs=1.0)


def test_negative_lambda_max_is_listed_not_dropped_silently():
  pts = sim()
  bad = pts[3]
  pts[3] = v.Observation(**{**bad.__dict__, "top_eig": -0.25})
  row = v.judge(c.COMPONENTS[2], pts, effects.ALL, 0.1)
  assert {"trial_id": bad.trial_id, "reason": "λ_max = -0.25 ≤ 0 cannot enter the log2 fit"} in row["excluded"]
  assert v.judge(c.COMPONENTS[2], pts, effects.ADVERSE, 0.1)["verdict"] == c.NOT_APPLICABLE


def test_adverse_scores_a_collapse_at_the_end_against_the_claim():
  pts = [v.Observation(**{**p.__dict__, "kind": quality.COLLAPSED, "reason": "collapsed"})
         if (p.regime, p.batch_size, p.seed) == ("constant_ratio", 256, 0) else p for p in sim()]
  c2 = next(x for x in c.COMPONENTS if (x.claim, x.name) == ("C2", "clean"))
  row = v.judge(c2, pts, effects.ADVERSE, 1.0)
  assert all(s["scored"].startswith("the low end") for s in row["adverse_scored"])  # chance: against equivalence
  c1 = next(x for x in c.COMPONENTS if (x.claim, x.name) == ("C1", "clean"))
  pts = [v.Observation(**{**p.__dict__, "kind": quality.DIVERGED, "reason": "diverged"})
         if (p.regime, p.batch_size, p.seed) == ("fixed_lr", 256, 0) else p for p in sim()]
  row = v.judge(c1, pts, effects.ADVERSE, 1.0)
  assert all(s["scored"].startswith("the best of its cell") for s in row["adverse_scored"])  # against a drop
