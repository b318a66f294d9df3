"""Hessian-vector products (evaluators/hessian/hvp.py: both autodiff modes, inference-mode BatchNorm, functions
shared by one architecture, a loaded SavedModel, the sum over replicas) against the dense Hessian of tiny float64
networks (hessian_nets.py: tape.jacobian of TF's own cross-entropy op) and against one replica."""

import json
import os
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_script
from tfrobust import export
from tfrobust.evaluators.hessian import hvp as hvp_lib
from tfrobust.evaluators.hessian.analyzer import HessianAnalyzer, count_params

sys.path.insert(0, os.path.dirname(__file__))  # pytest runs with --import-mode=importlib
from hessian_nets import (cases_fixture, dense_hessian, descending, float64,  # noqa: E402,F401 (*_fixture)
                          tiny_model, xy_fixture)




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


def test_models_of_one_architecture_share_one_trace(xy):
  """A sweep measures many models of one architecture: the second model must not retrace, and must get its
  own Hessian (its weights are arguments of the shared function, not the first model's captured variables)."""
  first, second = tiny_model("bn", seed=11), tiny_model("bn", seed=12)
  assert hvp_lib.structure_key(first) == hvp_lib.structure_key(second)
  assert hvp_lib.structure_key(first) != hvp_lib.structure_key(tiny_model("mlp"))
  own = hvp_lib.Functions(second, tf.distribute.get_strategy(), stateless=False)  # Its own variables.
  v = np.random.default_rng(3).standard_normal(count_params(second))
  for mode in ("reverse", "forward"):
    a = HessianAnalyzer(first, *xy, batch_size=40, hvp_mode=mode)
    a.hvp(v)
    traces = a.tracing_count
    b = HessianAnalyzer(second, *xy, batch_size=40, hvp_mode=mode)
    want = HessianAnalyzer(second, *xy, batch_size=40, hvp_mode=mode, _functions=own).hvp(v)
    np.testing.assert_allclose(b.hvp(v), want, rtol=0, atol=1e-5 * np.abs(want).max())
    assert b.tracing_count == traces, mode
    assert not np.allclose(a.hvp(v), want, rtol=0, atol=1e-2 * np.abs(want).max())


def test_loaded_savedmodel_gives_the_keras_models_hessian(xy, tmp_path):
  model = tiny_model("cnn", seed=4)
  loaded = export.LoadedModel(export.export_model(model, str(tmp_path / "sm")))
  v = np.random.default_rng(0).standard_normal(count_params(model))
  want = HessianAnalyzer(model, *xy, batch_size=32).hvp(v)
  np.testing.assert_allclose(HessianAnalyzer(loaded, *xy, batch_size=32).hvp(v), want, rtol=1e-5,
                             atol=1e-6 * np.abs(want).max())


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
  p = run_script(REPLICAS_SCRIPT, timeout=240)
  assert p.returncode == 0, p.stderr[-3000:]
  out = json.loads(p.stdout.strip().splitlines()[-1])
  assert out["replicas"] == 2
  assert out["hvp"]["reverse"] < 1e-5 and out["hvp"]["forward"] < 1e-5, out
  np.testing.assert_allclose(out["top"]["two"], out["top"]["one"], rtol=1e-5)
