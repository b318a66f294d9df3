"""tfrobust.losses: the one cross-entropy equals TensorFlow's fused op, can be differentiated twice (what the
Hessian needs, and the fused op cannot), and computes half-precision logits in float32."""

import numpy as np
import tensorflow as tf

from tfrobust.losses import cross_entropy


def test_equals_tensorflows_fused_cross_entropy():
  rng = np.random.default_rng(0)
  logits = tf.constant(rng.normal(scale=5.0, size=(64, 10)), tf.float32)
  labels = tf.constant(rng.integers(0, 10, size=64), tf.int64)
  want = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
  np.testing.assert_allclose(cross_entropy(labels, logits), want, rtol=1e-5, atol=1e-6)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(logits)
    ours, theirs = tf.reduce_sum(cross_entropy(labels, logits)), tf.reduce_sum(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
  np.testing.assert_allclose(tape.gradient(ours, logits), tape.gradient(theirs, logits), atol=1e-6)


def test_second_derivative_is_the_softmax_hessian():
  """d²CE/dz² = diag(p) − p pᵀ for one example, p = softmax(z): the formula, not a second code path."""
  z = tf.constant([[0.5, -1.0, 2.0, 0.0]], tf.float64)
  with tf.GradientTape() as outer:
    outer.watch(z)
    with tf.GradientTape() as inner:
      inner.watch(z)
      loss = cross_entropy(tf.constant([2]), z)
    grad = inner.gradient(loss, z)
  hessian = outer.jacobian(grad, z).numpy().reshape(4, 4)
  p = tf.nn.softmax(z).numpy()[0]
  np.testing.assert_allclose(hessian, np.diag(p) - np.outer(p, p), atol=1e-12)


def test_half_precision_logits_are_computed_in_float32():
  logits = tf.constant([[100.0, 0.0, -100.0]], tf.float16)
  out = cross_entropy(tf.constant([1]), logits)
  assert out.dtype == tf.float32 and np.isclose(out.numpy()[0], 100.0, rtol=1e-3)
