"""C4 (report/temperature.py): on synthetic sweeps whose metrics are a function of T = η/(B(1−μ)) alone, C4 is
supported; with a separate B effect of 2× the margin it is not; a grid that cannot tell T from B gives no verdict;
the per-seed weights are the least-squares coefficients (checked against numpy's lstsq)."""

import math
import os
import sys

import numpy as np
import pytest

from tfrobust.report import claims, temperature

sys.path.insert(0, os.path.dirname(__file__))  # pytest runs with --import-mode=importlib
import synthetic as syn  # noqa: E402 pylint: disable=wrong-import-position


def _log2_t(regime, b, mu):
  return math.log2(syn.scaled_lr(regime, b) / (b * (1 - mu)))


def _truth(b_effect=0.0):
  """Accuracies that bend in log2 T (a quadratic) plus `b_effect` accuracy points per doubling of B."""
  def truth(regime, b, mu, s):
    t = _log2_t(regime, b, mu) + 9
    curve = t - 0.2 * t * t
    return (0.9 + 0.01 * curve + b_effect / 100 * math.log2(b / 16), 0.5 + 0.02 * curve)
  return truth


def _eig(regime, b, mu):
  return 10.0 * 2 ** (-0.5 * (_log2_t(regime, b, mu) + 9))


BIG = dict(seeds=(0, 1, 2, 3, 4), n_clean=4000, n_adv=4000)  # test-set noise small enough to decide equivalence


def test_temperature_is_eta_over_b_times_one_minus_mu():
  assert temperature.temperature(0.05, 16, 0.9) == pytest.approx(0.05 / 1.6)


def test_metrics_of_t_alone_support_c4(tmp_path):
  _, find = syn.rows_of(syn.write_sweep(str(tmp_path), _truth(), eig=_eig, **BIG))
  for comp in ("clean", "adv", "eig"):
    row = find("C4", comp)
    assert row["verdict"] == claims.SUPPORTED, row["why"]
    assert [p["name"].split(" ")[0] for p in row["parts"]] == ["log2", "μ"]
  assert find("C4")["verdict"] == claims.SUPPORTED


def test_a_separate_b_effect_of_twice_the_margin_is_not_supported(tmp_path):
  _, find = syn.rows_of(syn.write_sweep(str(tmp_path), _truth(b_effect=2 * claims.ACC_MARGIN), eig=_eig, **BIG))
  row = find("C4", "clean")
  assert row["verdict"] == claims.CONTRADICTED and row["why"].startswith("log2 B at fixed T"), row["why"]
  assert row["estimate"] == pytest.approx(2 * claims.ACC_MARGIN, abs=0.3)
  assert find("C4", "adv")["verdict"] == claims.SUPPORTED
  assert find("C4")["verdict"] == claims.NOT_SUPPORTED


def test_one_regime_at_a_fixed_eta_cannot_tell_t_from_b(tmp_path):
  _, find = syn.rows_of(syn.write_sweep(str(tmp_path), _truth(), eig=_eig, regimes=("fixed_lr",)))
  row = find("C4", "clean")
  assert row["verdict"] == claims.NOT_MEASURED and "T cannot be told from B and μ" in row["note"]


def test_extra_weights_are_the_least_squares_coefficients():
  rng = np.random.default_rng(0)
  rows = [(_log2_t(r, b, mu), math.log2(b), mu) for r in syn.REGIMES for b in syn.BATCHES for mu in (0.0, 0.9)]
  x = temperature.design(rows, (0.0, 0.9))
  y = rng.normal(size=len(rows))
  coef = np.linalg.lstsq(x, y, rcond=None)[0]
  assert temperature.extra_weights(x) @ y == pytest.approx(coef[-2:])
  assert temperature.extra_weights(x[:, :-1]) @ y != pytest.approx(coef[-1:])  # a model without μ differs
