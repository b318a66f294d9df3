"""The Hessian evaluator (evaluators/hessian: hvp.py, eigensolvers.py, analyzer.py, evaluate.py) against a dense
Hessian (tape.jacobian of the gradient, TF's own cross-entropy op) on tiny float64 networks (a few hundred
weights), plus the config, the `python -m tfrobust.hessian` CLI and the multi-replica path."""

import contextlib
import json
import logging
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from keras import layers

from conftest import ROOT
from tfrobust import data, export
from tfrobust.cli.flags import hessian as hessian_flags
from tfrobust.errors import UsageError
from tfrobust.evaluators.hessian import eigensolvers
from tfrobust.evaluators.hessian import evaluate as hessian
from tfrobust.evaluators.hessian import hvp as hvp_lib
from tfrobust.evaluators.hessian.analyzer import HessianAnalyzer
from tfrobust.evaluators.hessian.config import HessianConfig


@contextlib.contextmanager
def float64():
  keras.config.set_floatx("float64")
  keras.config.set_dtype_policy("float64")
  try:
    yield
  finally:
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")


def tiny_model(kind, seed=0):
  """4x4 inputs. mlp: 226 weights; cnn (conv, max-pool): 210; bn (dense, BatchNorm, ReLU): 234."""
  keras.utils.set_random_seed(seed)
  inputs = keras.Input((4, 4, 1))
  x = inputs
  if kind == "cnn":
    x = layers.MaxPooling2D(2)(layers.Conv2D(4, 3, padding="same", activation="relu")(x))
  x = layers.Flatten()(x)
  if kind == "mlp":
    x = layers.Dense(8, activation="relu")(x)
  if kind == "bn":
    bn = layers.BatchNormalization()
    x = layers.ReLU()(bn(layers.Dense(8, use_bias=False)(x)))
  model = keras.Model(inputs, layers.Dense(10)(x))
  if kind == "bn":  # Moving statistics far from the batch statistics, so the two modes differ.
    rng = np.random.default_rng(seed)
    bn.moving_mean.assign(rng.normal(size=8))
    bn.moving_variance.assign(rng.uniform(0.2, 3.0, size=8))
  return model


@pytest.fixture(scope="module")
def xy():
  ds = data.load_dataset("digits")
  rng = np.random.default_rng(0)
  x = ds.x_train[:64].reshape(64, 4, 2, 4, 2, 1).mean(axis=(2, 4))  # 2x2 average pooling: 4x4 images.
  x = np.clip(0.9 * x + 0.1 * rng.uniform(size=x.shape), 0, 1).astype(np.float32)  # No max-pool ties.
  return x, ds.y_train[:64]


def dense_hessian(model, x, y, training=False):
  params = model.trainable_variables
  with tf.GradientTape(persistent=True) as outer:
    with tf.GradientTape() as inner:
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x, training=training)))
    g = tf.concat([tf.reshape(t, [-1]) for t in inner.gradient(loss, params)], 0)
  jac = outer.jacobian(g, params)  # pfor: 5-8x faster here than a loop, equal to 1e-16.
  h = np.concatenate([np.reshape(j, (g.shape[0], -1)) for j in jac], axis=1)
  np.testing.assert_allclose(h, h.T, atol=1e-12)
  return h


def descending(eigenvalues):
  """The order top_eigenvalues promises: algebraic, largest first (not by |λ|)."""
  return np.sort(eigenvalues)[::-1]


def by_magnitude(eigenvalues):
  return eigenvalues[np.argsort(-np.abs(eigenvalues))]


@pytest.fixture(scope="module")
def cases(xy):
  """{kind: (model, dense Hessian)} built once, float64."""
  with float64():
    out = {}
    for kind in ("mlp", "cnn", "bn"):
      model = tiny_model(kind)
      out[kind] = (model, dense_hessian(model, *xy))
  return out


@pytest.mark.parametrize("kind", ["mlp", "cnn", "bn"])
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_hvp_matches_dense_product(cases, xy, kind, mode):
  model, h = cases[kind]
  a = HessianAnalyzer(model, *xy, batch_size=24, hvp_mode=mode)  # 3 batches, the last one padded.
  v = np.random.default_rng(1).standard_normal(a.num_params)
  np.testing.assert_allclose(a.hvp(v), h @ v, rtol=0, atol=1e-12 * np.abs(h @ v).max() * 1e3)


def test_hvp_is_symmetric_in_float32(xy):
  model = tiny_model("cnn", seed=3)
  a = HessianAnalyzer(model, *xy, batch_size=32)
  rng = np.random.default_rng(2)
  v, w = rng.standard_normal((2, a.num_params))
  vhw, whv = v @ a.hvp(w), w @ a.hvp(v)
  assert abs(vhw - whv) <= 1e-4 * (abs(vhw) + 1e-3), (vhw, whv)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("method", ["power", "lanczos"])
def test_top3_eigenvalues_match_dense(cases, xy, kind, method):
  model, h = cases[kind]
  eigenvalues = np.linalg.eigvalsh(h)
  want = descending(eigenvalues)[:3]
  r = HessianAnalyzer(model, *xy, batch_size=64).top_eigenvalues(3, method=method, max_iter=2000, tol=1e-8)
  assert r.converged
  np.testing.assert_allclose(r.eigenvalues, want, rtol=1e-3)
  np.testing.assert_allclose(r.eigenvalues, want, rtol=1e-6)  # Far inside the required 1e-3.
  if method == "lanczos":  # The run stops when the top 3 converge: the other end has its own bound and flag.
    assert r.min_eigenvalue >= eigenvalues[0] - 1e-12  # Interlacing: a Ritz value never passes λ_min.
    assert np.min(np.abs(eigenvalues - r.min_eigenvalue)) <= r.min_residual + 1e-12
    assert r.min_converged == (r.min_residual <= 1e-8 * (abs(r.min_eigenvalue) + 1e-6))
  else:
    assert r.min_eigenvalue is None and r.min_converged is None


def _with_large_negative_eigenvalue(n=150, seed=0):
  """A dense symmetric matrix whose most negative eigenvalue (−40) dominates |λ|: by magnitude the top 3
  would be −40, 12, 9; algebraically they are 12, 9, 7."""
  rng = np.random.default_rng(seed)
  q, _ = np.linalg.qr(rng.standard_normal((n, n)))
  lam = np.concatenate([[-40.0, 12.0, 9.0, 7.0], rng.uniform(-1, 1, n - 4)])
  return (q * lam) @ q.T


@pytest.mark.parametrize("method", ["power", "lanczos"])
def test_top_eigenvalues_are_algebraic_when_a_negative_one_dominates(method):
  h = _with_large_negative_eigenvalue()
  eigenvalues = np.linalg.eigvalsh(h)
  assert list(by_magnitude(eigenvalues)[:3]) != list(descending(eigenvalues)[:3])  # The orders differ here.
  solver = {"power": eigensolvers.power_iteration, "lanczos": eigensolvers.lanczos_top}[method]
  r = solver(lambda v: h @ v, len(h), 3, max_iter=2000, tol=1e-10, rng=np.random.default_rng(1))
  assert r.converged
  np.testing.assert_allclose(r.eigenvalues, [12.0, 9.0, 7.0], rtol=1e-6)
  if method == "lanczos":
    assert r.min_converged and r.min_eigenvalue == pytest.approx(-40.0, rel=1e-8)
    assert r.min_residual <= 1e-10 * 40
  else:
    assert r.min_eigenvalue is None
  # Batched power iteration (the input Hessian's): the largest eigenvalue of H is 12, of −H it is 40.
  hs = np.stack([h, -h])
  b = eigensolvers.batched_power_iteration(lambda v: np.einsum("nij,nj->ni", hs, v),
                                      np.random.default_rng(2).standard_normal((2, len(h))), max_iter=3000,
                                      tol=1e-12)
  assert b.converged
  np.testing.assert_allclose(b.eigenvalues, [12.0, 40.0], rtol=1e-6)


@pytest.mark.parametrize("method", ["power", "lanczos"])
def test_network_hessian_whose_magnitude_order_differs(xy, method):
  """A tiny CNN at small weights scored against its least likely class: a negative eigenvalue ranks second by
  |λ|, and top_eigenvalues must skip it; Lanczos records it as min_eigenvalue."""
  with float64():
    model = tiny_model("cnn", seed=0)
    for w in model.trainable_variables:
      if len(w.shape) > 1:
        w.assign(0.5 * w)
    y = np.argmin(model(xy[0]).numpy(), -1)
    eigenvalues = np.linalg.eigvalsh(dense_hessian(model, xy[0], y))
    assert eigenvalues[0] < 0 and list(by_magnitude(eigenvalues)[:3]) != list(descending(eigenvalues)[:3])
    r = HessianAnalyzer(model, xy[0], y, batch_size=64).top_eigenvalues(3, method=method, max_iter=3000,
                                                                        tol=1e-11)
  assert r.converged
  np.testing.assert_allclose(r.eigenvalues, descending(eigenvalues)[:3], rtol=1e-5)
  if method == "lanczos":
    assert r.min_converged and r.min_eigenvalue == pytest.approx(eigenvalues[0], rel=1e-6)


def test_batchnorm_is_the_inference_mode_hessian(cases, xy):
  model, h = cases["bn"]
  moving = [v.numpy() for v in model.non_trainable_variables]
  with float64():
    h_train = dense_hessian(model, *xy, training=True)  # Also updates the moving statistics: restore them.
  for v, value in zip(model.non_trainable_variables, moving):
    v.assign(value)
  want = descending(np.linalg.eigvalsh(h))[:3]
  assert abs(descending(np.linalg.eigvalsh(h_train))[0] - want[0]) > 1e-2 * abs(want[0])  # Modes differ.
  r = HessianAnalyzer(model, *xy, batch_size=20).top_eigenvalues(3, max_iter=200, tol=1e-9)
  np.testing.assert_allclose(r.eigenvalues, want, rtol=1e-6)


def test_hutchinson_within_three_standard_errors(cases, xy):
  model, h = cases["cnn"]
  t = HessianAnalyzer(model, *xy, batch_size=64).trace(max_samples=200, tol=1e-9, seed=0)
  assert t.samples == 200 and 0 < t.standard_error < 0.2 * abs(np.trace(h))
  assert abs(t.trace - np.trace(h)) <= 3 * t.standard_error, (t, np.trace(h))


def test_slq_density_integrates_to_one_and_has_mean_trace_over_n(cases, xy):
  model, h = cases["mlp"]
  n, runs = h.shape[0], 20
  d = HessianAnalyzer(model, *xy, batch_size=64).density(num_steps=20, num_runs=runs, seed=5)
  nodes, weights, grid, rho = (np.asarray(d[k]) for k in ("nodes", "weights", "grid", "density"))
  assert abs(weights.sum() - 1) < 1e-12 and (weights >= 0).all()
  assert abs(np.trapezoid(rho, grid) - 1) < 1e-6
  rng = np.random.default_rng(5)  # The start vectors SLQ drew: its mean is exactly their mean zᵀHz / n.
  quad = np.array([z @ h @ z / n for z in (eigensolvers.rademacher(rng, n) for _ in range(runs))])
  np.testing.assert_allclose(weights @ nodes, quad.mean(), rtol=1e-8)
  np.testing.assert_allclose(np.trapezoid(grid * rho, grid), weights @ nodes, rtol=1e-3, atol=1e-6)
  assert abs(weights @ nodes - np.trace(h) / n) <= 3 * quad.std(ddof=1) / np.sqrt(runs)


def test_same_seed_same_numbers_and_no_retrace(cases, xy):
  model, _ = cases["cnn"]
  a = HessianAnalyzer(model, *xy, batch_size=32)
  first = a.top_eigenvalues(2, method="power", max_iter=50, tol=1e-4, seed=7)
  traces = a.tracing_count
  again = a.on_subset(*xy).top_eigenvalues(2, method="power", max_iter=50, tol=1e-4, seed=7)
  assert first == again
  other = a.top_eigenvalues(2, method="power", max_iter=50, tol=1e-4, seed=8)
  assert other.eigenvalues != first.eigenvalues
  a.top_eigenvalues(2, method="lanczos", max_iter=50, tol=1e-4, seed=7)
  a.on_subset(xy[0][::-1], xy[1][::-1]).hvp(np.ones(a.num_params))
  assert a.tracing_count == traces  # Hundreds of products, a second subset of the same size: no new trace.
  np.testing.assert_array_equal(hessian.subset_indices(1000, 100, 3), hessian.subset_indices(1000, 100, 3))
  assert not np.array_equal(hessian.subset_indices(1000, 100, 3), hessian.subset_indices(1000, 100, 4))


def test_models_of_one_architecture_share_one_trace(xy):
  """A sweep measures many models of one architecture: the second model must not retrace, and must get its
  own Hessian (its weights are arguments of the shared function, not the first model's captured variables)."""
  first, second = tiny_model("bn", seed=11), tiny_model("bn", seed=12)
  assert hvp_lib.structure_key(first) == hvp_lib.structure_key(second)
  assert hvp_lib.structure_key(first) != hvp_lib.structure_key(tiny_model("mlp"))
  own = hvp_lib.Functions(second, tf.distribute.get_strategy(), stateless=False)  # Its own variables.
  v = np.random.default_rng(3).standard_normal(hessian.count_params(second))
  for mode in ("reverse", "forward"):
    a = HessianAnalyzer(first, *xy, batch_size=40, hvp_mode=mode)
    a.hvp(v)
    traces = a.tracing_count
    b = HessianAnalyzer(second, *xy, batch_size=40, hvp_mode=mode)
    want = HessianAnalyzer(second, *xy, batch_size=40, hvp_mode=mode, _functions=own).hvp(v)
    np.testing.assert_allclose(b.hvp(v), want, rtol=0, atol=1e-5 * np.abs(want).max())
    assert b.tracing_count == traces, mode
    assert not np.allclose(a.hvp(v), want, rtol=0, atol=1e-2 * np.abs(want).max())


def test_per_layer_blocks_and_input_hessian_match_dense(cases, xy):
  model, h = cases["mlp"]
  a = HessianAnalyzer(model, *xy, batch_size=64)
  per_layer = a.per_layer_top_eigenvalues(max_iter=200, tol=1e-9)
  for name, idx in a.layer_groups().items():
    want = np.linalg.eigvalsh(h[np.ix_(idx, idx)])[-1]
    np.testing.assert_allclose(per_layer[name]["top_eigenvalue"], want, rtol=1e-6)
  x, y = xy[0][:4], xy[1][:4]
  got = a.on_subset(x, y).input_top_eigenvalue(max_iter=2000, tol=1e-7)  # Inputs are float32.
  want = []
  for i in range(4):
    xi = tf.constant(x[i:i + 1])
    with tf.GradientTape() as outer:
      outer.watch(xi)
      with tf.GradientTape() as inner:
        inner.watch(xi)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y[i:i + 1], model(xi))
      g = tf.reshape(inner.gradient(loss, xi), [-1])
    hx = np.reshape(outer.jacobian(g, xi), (16, 16))
    want.append(np.linalg.eigvalsh(hx)[-1])
  assert got["converged"]
  np.testing.assert_allclose(got["mean"], np.mean(want), rtol=1e-4)


def test_loaded_savedmodel_gives_the_keras_models_hessian(xy, tmp_path):
  model = tiny_model("cnn", seed=4)
  loaded = export.LoadedModel(export.export_model(model, str(tmp_path / "sm")))
  v = np.random.default_rng(0).standard_normal(hessian.count_params(model))
  want = HessianAnalyzer(model, *xy, batch_size=32).hvp(v)
  np.testing.assert_allclose(HessianAnalyzer(loaded, *xy, batch_size=32).hvp(v), want, rtol=1e-5,
                             atol=1e-6 * np.abs(want).max())


def test_evaluate_records_everything_and_non_convergence(xy, tmp_path, caplog):
  from tfrobust.experiment import outputs
  ds = data.Dataset("tiny", xy[0], xy[1], xy[0][:0], xy[1][:0], 10)
  model = tiny_model("cnn", seed=5)
  config = HessianConfig(top_k=2, examples=40, max_iter=2, tol=1e-9, trace=True, density=True, input=True,
                         per_layer=True, repeats=2, batch_size=16)
  with caplog.at_level(logging.WARNING):
    ev = hessian.evaluate(model, ds, config, strategy=tf.distribute.get_strategy(), progress=False)
  s = ev.section
  assert set(ev.figures) == {"hessian_density.png"} and ev.examples == {}
  outputs.write_figures({"hessian": ev}, str(tmp_path))
  outputs.write_tensorboard({"hessian": ev}, tf.summary.create_file_writer(str(tmp_path / "tb")))
  assert s["converged"] is False and "top_eigenvalues" in s["not_converged"]  # Recorded, not raised,
  assert "hessian: top_eigenvalues did not converge to tol=1e-09 within 2 iterations" in caplog.text  # warned.
  assert len(s["top_eigenvalues"]) == 2 and s["examples"] == 40 and s["subset_seed"] == 0
  assert s["top_eigenvalues"][0] >= s["top_eigenvalues"][1] >= s["min_eigenvalue"]  # Lanczos: both ends.
  assert s["min_eigenvalue_converged"] is False and s["min_eigenvalue_residual_bound"] > 0  # After 2 steps.
  assert {"trace", "density", "input_top_eigenvalue", "per_layer", "repeats", "seconds"} <= set(s)
  assert s["trace"]["converged"] is False and "trace" in s["not_converged"]
  assert s["repeats"]["values"][0] == s["top_eigenvalues"] and len(s["repeats"]["std"]) == 2
  assert (tmp_path / "hessian_density.png").stat().st_size > 1000
  json.dumps(s)
  tags = {v.tag for f in (tmp_path / "tb").iterdir() for e in tf.compat.v1.train.summary_iterator(str(f))
          for v in e.summary.value}
  assert {"hessian/top_eigenvalue_0", "hessian/top_eigenvalue_1", "hessian/min_eigenvalue"} <= tags


@pytest.mark.parametrize("field,value,flag", [
    ("top_k", 0, "--hessian_top_k=0"), ("top_k", -2, "--hessian_top_k=-2"),
    ("examples", 0, "--hessian_examples=0"), ("tol", 0.0, "--hessian_tol=0.0"),
    ("tol", float("nan"), "--hessian_tol=nan"), ("max_iter", 0, "--hessian_max_iter=0"),
    ("method", "arnoldi", "--hessian_method=arnoldi"), ("repeats", 0, "--hessian_repeats=0")])
def test_bad_config_names_the_flag(field, value, flag):
  with pytest.raises(UsageError, match=flag):
    HessianConfig(**{field: value}).validate()


def test_bad_config_against_model_and_data():
  with pytest.raises(UsageError, match="--hessian_top_k=227: larger than the model's 226 parameters"):
    HessianConfig(top_k=227).validate_against(226, 100)
  with pytest.raises(UsageError, match="--hessian_examples=101: larger than the training set"):
    HessianConfig(examples=101).validate_against(226, 100)
  HessianConfig(top_k=226, examples=100, max_iter=300).validate_against(226, 100)
  assert HessianConfig().num_examples("digits", 1437) == 1437
  assert HessianConfig().num_examples("cifar10", 50000) == 4096


def test_config_from_flags_refuses_hessian_flags_when_the_section_is_off():
  fv = flags.FlagValues()
  hessian_flags.define_flags(fv)
  fv(["prog"])
  assert hessian_flags.config_from_flags(fv, "digits") is None  # The default: no Hessian section.
  fv.unparse_flags()
  fv(["prog", "--hessian_tol=0"])  # Would be silently ignored: refused instead.
  with pytest.raises(UsageError, match="--hessian_tol: needs --hessian_top_k >= 1"):
    hessian_flags.config_from_flags(fv, "digits")
  fv.unparse_flags()
  fv(["prog", "--hessian_top_k=2", "--hessian_max_iter=0"])
  with pytest.raises(UsageError, match="--hessian_max_iter=0: must be >= 1"):
    hessian_flags.config_from_flags(fv, "digits").validate()  # as the entry point's ExperimentConfig.validate


def _run(args, **kwargs):
  env = dict(os.environ, PYTHONPATH=ROOT)
  return subprocess.run([sys.executable] + args, cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=240, **kwargs)


@pytest.fixture(scope="module")
def saved(xy, tmp_path_factory):
  """A tiny CNN exported as a SavedModel (210 weights) and its 64 examples as an .npz."""
  tmp = tmp_path_factory.mktemp("cli")
  model = tiny_model("cnn", seed=6)
  export.export_model(model, str(tmp / "sm"))
  np.savez(tmp / "d.npz", x=xy[0], y=xy[1])
  return model, ["-m", "tfrobust.hessian", f"--saved_model={tmp / 'sm'}", f"--npz={tmp / 'd.npz'}"]


@pytest.mark.parametrize("flag,message", [
    ("--hessian_tol=0", "--hessian_tol=0.0: must be a finite number > 0"),  # Checked before TF loads the model.
    ("--hessian_examples=65", "--hessian_examples=65: larger than the training set (64 examples)")])
def test_cli_bad_input_is_one_line_exit_2_nothing_written(saved, tmp_path, flag, message):
  """Two CLI runs (one per check site; a run costs a TensorFlow import); every other bad value goes through
  the same HessianConfig.validate / validate_against, tested in-process above."""
  p = _run(saved[1] + [flag, f"--output={tmp_path / 'out'}"])
  assert p.returncode == 2 and p.stderr.strip().splitlines() == [f"error: {message}"], p.stderr
  assert not (tmp_path / "out").exists()


def test_cli_on_a_savedmodel(saved, xy, tmp_path):
  model, args = saved
  p = _run(args + ["--hessian_top_k=2", "--hessian_tol=1e-6", "--hessian_density", "--hessian_max_iter=40",
                   f"--output={tmp_path / 'out'}"])
  assert p.returncode == 0, p.stderr[-2000:]
  got = json.loads((tmp_path / "out" / "evaluation.json").read_text())["hessian"]
  printed = json.loads(p.stdout.rsplit("\n-> ", 1)[0])  # the evaluator's text, then the file written
  assert printed["hessian"]["top_eigenvalues"] == got["top_eigenvalues"]
  ds = data.Dataset("npz", xy[0], xy[1], xy[0][:0], xy[1][:0], 10)
  want = hessian.top_eigenvalues(model, ds, k=2, tol=1e-6)  # The Python API on the same (whole) set.
  np.testing.assert_allclose(got["top_eigenvalues"], want.eigenvalues, rtol=1e-4)
  assert got["examples"] == 64 and got["converged"] and (tmp_path / "out" / "hessian_density.png").exists()


REPLICAS_SCRIPT = textwrap.dedent("""
  import json, sys
  from tfrobust import distribute
  distribute.split_cpu(2)
  import numpy as np, tensorflow as tf, keras
  from keras import layers
  from tfrobust.evaluators.hessian.analyzer import HessianAnalyzer
  def build():
    keras.utils.set_random_seed(0)
    i = keras.Input((4, 4, 1))
    x = layers.MaxPooling2D(2)(layers.Conv2D(4, 3, padding="same", activation="relu")(i))
    return keras.Model(i, layers.Dense(10)(layers.Flatten()(x)))
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(61, 4, 4, 1)).astype(np.float32)  # Odd count: padding on both replicas.
  y = rng.integers(0, 10, 61)
  v = rng.standard_normal(210)
  one = HessianAnalyzer(build(), x, y, batch_size=16)
  strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  with strategy.scope():
    model = build()
  out = {"replicas": strategy.num_replicas_in_sync, "top": {}, "hvp": {}}
  for mode in ("reverse", "forward"):
    two = HessianAnalyzer(model, x, y, batch_size=16, strategy=strategy, hvp_mode=mode)
    out["hvp"][mode] = float(np.abs(two.hvp(v) - one.hvp(v)).max() / np.abs(one.hvp(v)).max())
  for name, a in (("one", one), ("two", two)):
    out["top"][name] = a.top_eigenvalues(1, max_iter=100, tol=1e-6, seed=0).eigenvalues[0]
  print(json.dumps(out))
""")


def test_two_cpu_replicas_equal_one():
  p = _run(["-c", REPLICAS_SCRIPT])
  assert p.returncode == 0, p.stderr[-3000:]
  out = json.loads(p.stdout.strip().splitlines()[-1])
  assert out["replicas"] == 2
  assert out["hvp"]["reverse"] < 1e-5 and out["hvp"]["forward"] < 1e-5, out
  np.testing.assert_allclose(out["top"]["two"], out["top"]["one"], rtol=1e-5)
