"""The robustness evaluator (evaluators/robustness: evaluate.py, checks.py, config.py; and its flags): the ε
curves on a trained CNN (PGD ≤ FGSM, ε = 0 = clean), checks that do fail when they should, a gradient-masked
model caught, TensorBoard (single points and the accuracy-vs-ε curve) and PNG output, config and flag
validation."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from tfrobust import models
from tfrobust.cli.flags import robustness as robustness_flags
from tfrobust.errors import UsageError
from tfrobust.evaluators.robustness import checks as checks_lib
from tfrobust.evaluators.robustness import evaluate as robustness
from tfrobust.evaluators.robustness.config import DEFAULT_EPS, RobustnessConfig
from tfrobust.evaluators.robustness.evaluate import Curve


@pytest.fixture(scope="module")
def trained_cnn():
  """A LeNet trained for a few epochs on digits (≈ 90% test accuracy), and 200 test images."""
  from tfrobust import data
  ds = data.load_digits()
  model = models.build_model("lenet", ds.input_shape, 10, seed=0)
  model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  model.fit(ds.x_train, ds.y_train, epochs=12, batch_size=64, verbose=0)
  return model, ds.x_test[:200], ds.y_test[:200]


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


def _curve(attack, norm, acc, n=100):
  """A Curve whose example k is correct at ε_i when k < acc_i·n."""
  acc = np.asarray(acc)
  correct = np.arange(n)[None, :] < np.round(acc * n)[:, None]
  eps = tuple(np.linspace(0, 0.3, len(acc)))
  return Curve(attack, norm, eps, eps, 10, 1, correct)


def _clean(n=100, acc=0.9, zero_grad=0.0):
  k = np.arange(n)
  return {"correct": k < acc * n, "zero_grad": k < zero_grad * n, "tiny_grad": k < zero_grad * n}


def _checks(pgd, fgsm, noise, zero_grad=0.0, deep=None, reference_acc=0.9, shifted=0):
  """The verdicts on crafted curves; the plain-forward-pass reference is right on its first reference_acc·n
  examples, rolled by `shifted` examples (what a runner that mixed up example order would disagree with)."""
  config = RobustnessConfig(norms=("inf",), deep_check=deep is not None)
  curves = {("fgsm", "inf"): _curve("fgsm", "inf", fgsm), ("pgd", "inf"): _curve("pgd", "inf", pgd),
            ("noise", "inf"): _curve("noise", "inf", noise)}
  for kind, acc in (deep or {}).items():
    curves[kind, "inf"] = _curve("pgd", "inf", acc)
  reference = np.roll(_clean(acc=reference_acc)["correct"], shifted)
  checks = checks_lib.sanity_checks(config, _clean(zero_grad=zero_grad), curves, reference=reference)
  return {name: check["passed"] for name, check in checks.items()}


def test_each_sanity_check_can_fail():
  good = dict(pgd=[0.9, 0.5, 0.0], fgsm=[0.9, 0.6, 0.1], noise=[0.9, 0.85, 0.8])
  assert all(_checks(**good).values())
  assert not _checks(**good, reference_acc=0.8)["eps0_equals_clean"]
  assert not _checks(**good, shifted=5)["eps0_equals_clean"]  # the same accuracy, other examples
  assert _checks(**good, reference_acc=0.89)["eps0_equals_clean"]  # one example (a near-tie) is the tolerance
  assert not _checks(**dict(good, pgd=[0.9, 0.3, 0.5]))["monotone_in_eps"]
  assert not _checks(**dict(good, pgd=[0.9, 0.5, 0.2]))["low_accuracy_at_max_eps"]
  assert not _checks(**dict(good, pgd=[0.9, 0.65, 0.0]))["pgd_not_weaker_than_fgsm"]
  assert not _checks(**good, zero_grad=0.3)["zero_input_gradients"]
  assert not _checks(**dict(good, noise=[0.9, 0.4, 0.0]))["noise_weaker_than_attack"]
  deep_ok = {"pgd_more": [0.9, 0.5, 0.0], "pgd_margin": [0.9, 0.49, 0.0]}
  assert all(_checks(**good, deep=deep_ok).values())
  assert not _checks(**good, deep=dict(deep_ok, pgd_more=[0.9, 0.45, 0.0]))["deep_pgd_more"]
  assert not _checks(**good, deep=dict(deep_ok, pgd_margin=[0.9, 0.3, 0.0]))["deep_pgd_margin"]
  # One example (1 point at n = 100) is the tolerance, not a failure.
  assert _checks(**dict(good, pgd=[0.9, 0.61, 0.0]))["pgd_not_weaker_than_fgsm"]


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


def test_deep_check_runs_and_reports(trained_cnn):
  model, x, y = trained_cnn
  config = RobustnessConfig(attacks=("pgd",), norms=("inf",), eps=(0.05, 0.2), pgd_steps=5, deep_check=True)
  section, _ = robustness.measure(model, x[:50], y[:50], config, progress=False)
  checks = section["checks"]
  pgd = np.array([e["accuracy"] for e in section["accuracy"]])  # ε = 0, 0.05, 0.2
  for name in ("deep_pgd_more", "deep_pgd_margin"):
    deeper = np.array(checks[name]["accuracy"]["inf"])
    assert len(deeper) == len(pgd) == 3 and deeper[0] == pgd[0]  # the same clean examples at ε = 0
    drop = checks[name]["largest_drop"]["pgd_linf"]
    assert drop == pytest.approx(np.max(pgd - deeper))  # the number the verdict rests on is the curves' gap
    assert checks[name]["passed"] == (drop <= 0.01 + 1e-9)
  assert "pgd_not_weaker_than_fgsm" not in checks  # needs both attacks


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


@pytest.mark.parametrize("field,value,flag", [
    ("eps", (0.1, -0.01), "--eps=0.1,-0.01"), ("eps", (float("nan"),), "--eps=nan"),
    ("eps_l2", (float("inf"),), "--eps_l2=inf"), ("eps", (), "--eps="),
    ("attacks", ("fgsm", "cw"), "--attacks=fgsm,cw"), ("norms", ("inf", "1"), "--norms=inf,1"),
    ("pgd_steps", 0, "--pgd_steps=0"), ("pgd_restarts", -1, "--pgd_restarts=-1"),
    ("pgd_step_size", 0.0, "--pgd_step_size=0"), ("eval_examples", 0, "--eval_examples=0"),
    ("batch_size", 0, "--attack_batch_size=0"), ("backend", "cuda", "--attack_backend=cuda"),
    ("tolerance", 2.0, "--robustness_tolerance=2"),
])
def test_bad_config_names_the_flag(field, value, flag):
  with pytest.raises(UsageError, match="^" + flag.replace(".", r"\.") + ":"):
    RobustnessConfig(**{field: value}).validate()


def _parse(*args):
  fv = flags.FlagValues()
  robustness_flags.define_flags(fv)
  fv(["prog", *args])
  config = robustness_flags.config_from_flags(fv, "digits")
  return config and config.validate()  # what the entry point's ExperimentConfig.validate does


def test_flags_make_the_config():
  assert _parse() is None  # off unless --attacks is given
  config = _parse("--attacks=pgd", "--norms=inf", "--eps=0.1,0.05", "--pgd_steps=7", "--attack_backend=fused")
  assert config == RobustnessConfig(attacks=("pgd",), norms=("inf",), eps=(0.1, 0.05), pgd_steps=7,
                                    backend="fused", dataset="digits")
  assert config.grid("inf", (8, 8, 1)) == [0.0, 0.05, 0.1]
  with pytest.raises(UsageError, match="^--eps: needs --attacks"):
    _parse("--eps=0.1")
  with pytest.raises(UsageError, match="^--eps=0.1,x: 'x' is not a number"):
    _parse("--attacks=fgsm", "--eps=0.1,x")
  with pytest.raises(UsageError, match="^--pgd_restarts=0:"):
    _parse("--attacks=pgd", "--pgd_restarts=0")


def test_default_grids_and_step_size():
  config = RobustnessConfig(dataset="cifar10")
  assert config.grid("inf", (32, 32, 3))[:3] == [0.0, 0.25 / 255, 0.5 / 255]
  assert RobustnessConfig(dataset="mnist5k").grid("2", (28, 28, 1))[-1] == 3.0
  assert RobustnessConfig().grid("inf", (8, 8, 1)) == list(DEFAULT_EPS["digits"][0])
  assert RobustnessConfig().grid("inf", (32, 32, 3)) == RobustnessConfig(dataset="cifar10").grid("inf", (32, 32, 3))
  assert config.step_size(0.1, 20) == pytest.approx(0.0125)
  assert RobustnessConfig(pgd_step_size=0.5).step_size(0.1, 20) == 0.1  # capped at ε, as cleverhans requires
