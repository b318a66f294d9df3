"""Helpers of the Hessian evaluator's tests (tests/evaluators/hessian/): tiny networks on 4x4 digits (a few
hundred weights) and their dense Hessian, the independent reference every test compares against: tape.jacobian of
the gradient of TF's own cross-entropy op, not the code under test.

The data and the dense Hessians are built once per process and shared by the test files (a conftest.py here
would take the name `conftest` from tests/conftest.py under --import-mode=importlib).
"""

import contextlib
import functools

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from tfrobust import data


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


@functools.lru_cache(maxsize=None)
def pooled_digits():
  """64 digits training images average-pooled to 4x4, and their labels."""
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


@functools.lru_cache(maxsize=None)
def dense_cases():
  """{kind: (model, dense Hessian)} of the three tiny networks on pooled_digits(), float64."""
  xy = pooled_digits()
  with float64():
    out = {}
    for kind in ("mlp", "cnn", "bn"):
      model = tiny_model(kind)
      out[kind] = (model, dense_hessian(model, *xy))
  return out


@pytest.fixture(name="xy")
def xy_fixture():
  """The pooled 4x4 digits (x, y) every test of this folder uses."""
  return pooled_digits()


@pytest.fixture(name="cases")
def cases_fixture():
  """{kind: (model, dense Hessian)}, float64, shared by the test files of this folder."""
  return dense_cases()
