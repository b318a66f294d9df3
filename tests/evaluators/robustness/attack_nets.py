"""Helpers of the APGD and Square tests: a small dense model, the fixture of an untrained one on random 8x8 images,
and the size of a perturbation in a norm (the ε-ball checks)."""

import keras
import numpy as np
import pytest


def dense_model(shape, classes, seed, hidden=32):
  keras.utils.set_random_seed(seed)
  inputs = keras.Input(shape=shape)
  features = keras.layers.Dense(hidden, activation="relu")(keras.layers.Flatten()(inputs))
  return keras.Model(inputs, keras.layers.Dense(classes)(features))


@pytest.fixture(scope="module", name="small")
def small_fixture():
  """An untrained dense model on random 8x8 images whose pixels include exact 0s and 1s ([0, 1] binds)."""
  rng = np.random.default_rng(0)
  x = rng.integers(0, 17, size=(24, 8, 8, 1)).astype(np.float32) / 16
  y = rng.integers(0, 10, size=24)
  return dense_model((8, 8, 1), 10, seed=1), x, y


def size(delta, norm):
  """Per example, the perturbation's L∞ or L2 norm."""
  delta = delta.reshape(len(delta), -1)
  return np.abs(delta).max(axis=1) if norm == "inf" else np.linalg.norm(delta, axis=1)


def two_class_linear(seed=2, n=200):
  """(model, x, y, W): z = W·x + b on 4x4 images with two classes, b putting the boundary through the middle of
  the image cube, and n images labelled by the model itself, so that every example's robust radius is known
  analytically (|margin| / the dual norm of w₁ − w₀)."""
  rng = np.random.default_rng(seed)
  w = rng.normal(size=(16, 2))
  inputs = keras.Input(shape=(4, 4, 1))
  dense = keras.layers.Dense(2)
  model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
  dense.set_weights([w.astype(np.float32), (-0.5 * w.sum(axis=0)).astype(np.float32)])
  x = rng.uniform(0.3, 0.7, size=(n, 4, 4, 1)).astype(np.float32)
  return model, x, np.argmax(model(x).numpy(), axis=1), w
