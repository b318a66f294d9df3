"""evaluators/robustness evaluate.py: the ε curves on a trained CNN (PGD ≤ FGSM, ε = 0 = clean), the same seed
the same numbers, a gradient-masked model caught, the deep check's autoattack, the APGD, Square and autoattack
curves with their per-example outcomes, and the Evaluation handed back (TensorBoard points and curves, PNG)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust.evaluators.robustness import evaluate as robustness
from tfrobust.evaluators.robustness.config import RobustnessConfig
from tfrobust.records.run import min_fool_eps

@pytest.fixture(scope="module")
def cnn_section(trained_cnn):
  model, x, y = trained_cnn
  config = RobustnessConfig(norms=("inf", "2"), pgd_steps=10, dataset="digits")
  return robustness.measure(model, x, y, config, progress=False)[0]


def test_pgd_is_not_weaker_than_fgsm_and_eps0_is_clean(trained_cnn, cnn_section):
  model, x, y = trained_cnn
  clean = float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))
  assert clean > 0.8
  rows = {(e["attack"], e["norm"], e["eps"]): e for e in cnn_section["accuracy"]}
  for norm in ("inf", "2"):
    grid = sorted(e for a, n, e in rows if a == "pgd" and n == norm)
    pgd = np.array([rows["pgd", norm, e]["accuracy"] for e in grid])
    fgsm = np.array([rows["fgsm", norm, e]["accuracy"] for e in grid])
    assert pgd[0] == fgsm[0] == clean
    assert np.all(pgd <= fgsm + 1e-9)
    assert np.any(pgd < fgsm - 0.02)  # the iterations do find more
    assert pgd[-1] <= 0.05 and 0.1 < pgd[len(pgd) // 2] < clean  # the grid spans the curve
  assert all(check["passed"] for check in cnn_section["checks"].values()), \
      {k: v["detail"] for k, v in cnn_section["checks"].items() if not v["passed"]}
  e = rows["pgd", "inf", 0.1]
  assert e["eps_255"] == pytest.approx(25.5) and e["steps"] == 10 and e["restarts"] == 1
  assert e["step_size"] == pytest.approx(0.025) and e["examples"] == 200
  summary = cnn_section["summary"]["pgd_linf"]
  grid = sorted(k for a, n, k in rows if a == "pgd" and n == "inf")
  assert summary["auc"] == pytest.approx(np.trapezoid([rows["pgd", "inf", k]["accuracy"] for k in grid], grid))
  json.dumps(cnn_section)  # JSON-ready


def test_same_seed_same_numbers(trained_cnn, cnn_section):
  model, x, y = trained_cnn
  again, _ = robustness.measure(model, x, y, RobustnessConfig(norms=("inf", "2"), pgd_steps=10, dataset="digits"),
                                progress=False)
  assert again["accuracy"] == cnn_section["accuracy"]


class _StopGradient(keras.layers.Layer):
  def call(self, x):
    return tf.stop_gradient(x)


def test_gradient_masking_is_caught(trained_cnn):
  """The same network behind a stop_gradient: the attacks see zero gradients and the checks say so."""
  model, x, y = trained_cnn
  inputs = keras.Input(model.input_shape[1:])
  masked = keras.Model(inputs, model(_StopGradient()(inputs)))
  config = RobustnessConfig(attacks=("fgsm", "pgd"), norms=("inf",), eps=(0.1, 0.3), pgd_steps=3)
  checks = robustness.measure(masked, x[:60], y[:60], config, progress=False)[0]["checks"]
  assert checks["zero_input_gradients"]["fraction"] == 1.0 and not checks["zero_input_gradients"]["passed"]
  assert not checks["low_accuracy_at_max_eps"]["passed"]


def test_deep_check_runs_the_autoattack_sequence(trained_cnn):
  model, x, y = trained_cnn
  config = RobustnessConfig(attacks=("pgd",), norms=("inf",), eps=(0.05, 0.2), pgd_steps=5, apgd_steps=10,
                            square_queries=20, deep_check=True)
  section, _ = robustness.measure(model, x[:50], y[:50], config, progress=False)
  check = section["checks"]["deep_autoattack"]
  pgd = np.array([e["accuracy"] for e in section["accuracy"]])  # ε = 0, 0.05, 0.2
  deeper = np.array(check["accuracy"]["inf"])
  assert len(deeper) == len(pgd) == 3 and deeper[0] == pgd[0]  # the same clean examples at ε = 0
  drop = check["largest_drop"]["pgd_linf"]
  assert drop == pytest.approx(np.max(pgd - deeper))  # the number the verdict rests on is the curves' gap
  assert check["passed"] == (drop <= 0.01 + 1e-9)
  assert "pgd_not_weaker_than_fgsm" not in section["checks"]  # needs both attacks


def test_apgd_square_and_autoattack_curves(trained_cnn):
  """Each new attack gives a monotone curve from the clean accuracy; autoattack, which runs APGD-CE first on the
  same seeds, is never above APGD-CE example by example; examples.npz's smallest fooling ε is each example's
  first fooled grid ε."""
  model, x, y = trained_cnn
  config = RobustnessConfig(attacks=("apgd_ce", "apgd_dlr", "square", "autoattack"), norms=("inf", "2"),
                            eps=(0.05, 0.1, 0.3), eps_l2=(0.5, 2.0), apgd_steps=10, square_queries=30)
  section, curves = robustness.measure(model, x[:60], y[:60], config, progress=False)
  curves = {(c.attack, c.norm): c for c in curves}
  clean = float(np.mean(np.argmax(model(x[:60]).numpy(), axis=1) == y[:60]))
  for (attack, norm), c in curves.items():
    assert c.accuracy[0] == clean and np.all(np.diff(c.correct.astype(int), axis=0) <= 0), (attack, norm)
    assert c.accuracy[-1] < clean - 0.2, (attack, norm)  # each attack does attack
    # The largest ε first (sequences.py): APGD-CE on the clean-correct, then 9 APGD-T targets and Square on what
    # it left; the one-pass attacks on each clean-correct example once.
    if attack == "autoattack":
      assert c.correct[0].sum() <= c.attacked[-1] < 11 * c.correct[0].sum()
    else:
      assert c.attacked[-1] == c.correct[0].sum()
    first = np.where(~c.correct.any(axis=0), np.asarray(c.eps)[0], np.inf)  # wrong before any attack
    for i in range(1, len(c.eps)):
      first = np.where(np.isinf(first) & ~c.correct[i], c.eps[i], first)
    np.testing.assert_array_equal(min_fool_eps(c.eps, c.correct), first)
  for norm in ("inf", "2"):
    assert not np.any(curves["autoattack", norm].correct & ~curves["apgd_ce", norm].correct)
  rows = [e for e in section["accuracy"] if e["attack"] == "autoattack" and e["norm"] == "inf"]
  assert [r["steps"] for r in rows] == [10] * 4 and {r["step_size"] for r in rows} == {None}
  assert {r["steps"] for r in section["accuracy"] if r["attack"] == "square"} == {30}  # its queries
  assert section["checks"]["low_accuracy_at_max_eps"]["accuracy"].keys() == {"autoattack_linf", "autoattack_l2"}
  assert section["config"]["square_queries"] == 30
  json.dumps(section)
  assert "autoattack inf" in robustness.format_table(section)


def test_evaluate_hands_back_what_the_run_writes(trained_cnn, tmp_path):
  """The Evaluation: the section, scalars per ε and curves over ε keyed robustness/..., the figure, and per-example
  outcomes that agree with the accuracies; written by the experiment's writer, TensorBoard shows them."""
  from tfrobust.data import Dataset
  from tfrobust.experiment import outputs
  model, x, y = trained_cnn
  dataset = Dataset("digits", x, y, x, y, 10)
  config = RobustnessConfig(attacks=("fgsm",), norms=("inf", "2"), eps=(2 / 255, 0.1, 0.2), eps_l2=(0.5, 1.5),
                            eval_examples=30)
  ev = robustness.evaluate(model, dataset, config, progress=False)
  rows = {(e["norm"], e["eps"]): e["accuracy"] for e in ev.section["accuracy"]}
  assert {e["examples"] for e in ev.section["accuracy"]} == {30} and len(rows) == 4 + 3
  assert ev.scalars["robustness/fgsm_linf/eps_0.1"] == rows["inf", 0.1]
  # One curve per attack x norm, ε as the step: L∞ in quarter pixel levels, L2 in hundredths.
  assert dict(ev.curves["robustness/curve/fgsm_linf"]) == pytest.approx(
      {0: rows["inf", 0.0], 8: rows["inf", 2 / 255], 102: rows["inf", 0.1], 204: rows["inf", 0.2]})
  assert dict(ev.curves["robustness/curve/fgsm_l2"]) == pytest.approx(
      {0: rows["2", 0.0], 50: rows["2", 0.5], 150: rows["2", 1.5]})
  assert rows["inf", 0.2] < rows["inf", 0.0]  # a curve, not a constant
  curve = ev.examples[("fgsm", "inf")]
  assert curve.correct.shape == (4, 30)
  assert curve.correct.mean(axis=1) == pytest.approx([rows["inf", e] for e in (0.0, 2 / 255, 0.1, 0.2)])
  assert "fgsm" in ev.text and ("PASS" in ev.text or "FAIL" in ev.text)
  assert set(ev.figures) == {"robustness.png"}
  outputs.write_figures({"robustness": ev}, str(tmp_path))
  writer = tf.summary.create_file_writer(str(tmp_path / "tb"))
  outputs.write_tensorboard({"robustness": ev}, writer)
  assert os.path.getsize(tmp_path / "robustness.png") > 1000
  from tensorboard.backend.event_processing import event_accumulator
  acc = event_accumulator.EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0})
  acc.Reload()
  value = tf.make_ndarray(acc.Tensors("robustness/fgsm_linf/eps_0.1")[0].tensor_proto)
  assert value == pytest.approx(rows["inf", 0.1])
  steps = {ev_.step: float(tf.make_ndarray(ev_.tensor_proto)) for ev_ in acc.Tensors("robustness/curve/fgsm_l2")}
  assert steps == pytest.approx({0: rows["2", 0.0], 50: rows["2", 0.5], 150: rows["2", 1.5]})


def test_bisection_refines_the_smallest_fooling_eps_between_grid_points(trained_cnn):
  """--bisection_steps=2: each example fooled first at grid ε_i gets a bracket a quarter of (ε_{i−1}, ε_i] wide
  inside it; the per-example curves (and so examples.npz) carry it."""
  from tfrobust.data import Dataset
  model, x, y = trained_cnn
  config = RobustnessConfig(attacks=("pgd",), norms=("inf",), eps=(0.1, 0.3), pgd_steps=5, bisection_steps=2,
                            eval_examples=60)
  evaluation = robustness.evaluate(model, Dataset("digits", x, y, x, y, 10), config, progress=False)
  curve = evaluation.examples["pgd", "inf"]
  grid_first = curve.min_fool_eps
  inner = np.isin(grid_first, [0.1, 0.3])
  assert inner.sum() > 10
  below = np.where(grid_first == 0.1, 0.0, 0.1)
  np.testing.assert_allclose((curve.fool_eps - curve.robust_eps)[inner], ((grid_first - below) / 4)[inner])
  assert np.all(((below <= curve.robust_eps) & (curve.fool_eps <= grid_first))[inner])
  assert np.any(curve.fool_eps[inner] < grid_first[inner])  # it did refine
