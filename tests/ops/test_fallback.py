"""The PGD step's semantics (ops/fallback.py, plain TF) against cleverhans's own PGD iteration (FGM's update, then
clip_eta, then [0, 1]) on shapes and values where the clip and the projection bite, in half precision, at ε = 0
and by hand on exact binary fractions. The compiled op (where built) must meet the same values; its equality with
the fallback and the wrapper that picks one: test_ops.py."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.ops import fallback

sys.path.insert(0, os.path.dirname(__file__))  # pytest runs with --import-mode=importlib
import pgd_reference  # noqa: E402  pylint: disable=wrong-import-position
from pgd_reference import (  # noqa: E402
    SETTINGS, SHAPES, ULP_AT_ONE, assert_not_trivial, cleverhans_step, random_inputs, steps_under_test)


@pytest.fixture
def library():
  return pgd_reference.library()


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_fallback_is_cleverhans_step(norm, shape):
  eps, step_size = SETTINGS[norm]
  x, x0, g = random_inputs(shape, eps)
  got = fallback.STEPS[norm](x, x0, g, eps=eps, step_size=step_size).numpy()
  np.testing.assert_array_equal(got, cleverhans_step(x, x0, g, eps=eps, step_size=step_size, norm=norm).numpy())
  assert_not_trivial(got, x, x0, g, norm=norm, eps=eps, step_size=step_size)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16], ids=lambda d: d.name)
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_half_precision_is_float32_arithmetic_rounded_once(library, norm, dtype):
  eps, step_size = SETTINGS[norm]
  x, x0, g = (tf.cast(v, dtype) for v in random_inputs((6, 28, 28, 1), eps, seed=1))
  as32 = lambda v: tf.cast(v, tf.float32)
  want = tf.cast(cleverhans_step(as32(x), as32(x0), as32(g), eps=eps, step_size=step_size, norm=norm), dtype)
  for name, step in steps_under_test(library, norm):
    got = step(x, x0, g, eps=eps, step_size=step_size)
    assert got.dtype == dtype, name
    # One rounding at the end; the L2 norms may differ in their last float32 bit, so one ulp at 1.
    tolerance = 0 if norm == "linf" or name == "fallback" else ULP_AT_ONE[dtype]
    np.testing.assert_allclose(as32(got).numpy(), as32(want).numpy(), rtol=0, atol=tolerance, err_msg=name)
    assert np.abs(as32(got).numpy() - as32(x).numpy()).max() > 0.5 * step_size


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_eps_zero_returns_the_clean_image(library, norm):
  x, x0, g = random_inputs((4, 8, 8, 1), 0.1, seed=2)
  for name, step in steps_under_test(library, norm):
    np.testing.assert_array_equal(step(x, x0, g, eps=0.0, step_size=0.05).numpy(), x0.numpy(), err_msg=name)


def test_linf_boundary_and_clipping_by_hand(library):
  # Binary fractions, so every value below is exact in float32.
  x0 = tf.constant([[0.5, 0.5, 31 / 32, 1 / 32]])
  x = tf.constant([[0.75, 0.75, 63 / 64, 1 / 64]])  # the first two on the boundary |x - x0| = eps
  g = tf.constant([[1.0, -1.0, 1.0, -1.0]])
  want = [[0.75, 0.625, 1.0, 0.0]]  # stays on the boundary, moves inside, clipped at 1, clipped at 0
  for name, step in steps_under_test(library, "linf"):
    np.testing.assert_array_equal(step(x, x0, g, eps=0.25, step_size=0.125).numpy(), want, err_msg=name)


def test_l2_boundary_and_clipping_by_hand(library):
  x0 = tf.fill([1, 4], 0.5)
  g = tf.ones([1, 4])  # ||g|| = 2: the step is +0.25 per pixel, ||eta|| = 0.5 exactly
  edge_x0 = tf.constant([[31 / 32, 1 / 32, 0.5, 0.5]])
  edge_g = tf.constant([[1.0, -1.0, 1.0, -1.0]])
  for name, step in steps_under_test(library, "l2"):
    on_boundary = step(x0, x0, g, eps=0.5, step_size=0.5).numpy()
    np.testing.assert_array_equal(on_boundary, np.full([1, 4], 0.75), err_msg=name)  # factor min(1, 1) = 1
    np.testing.assert_array_equal(step(x0, x0, g, eps=0.25, step_size=0.5).numpy(), np.full([1, 4], 0.625),
                                  err_msg=name)
    clipped = step(edge_x0, edge_x0, edge_g, eps=1.0, step_size=0.5).numpy()
    np.testing.assert_array_equal(clipped, [[1.0, 0.0, 0.75, 0.25]], err_msg=name)
