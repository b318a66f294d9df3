"""The loss every part of tfrobust means by "cross-entropy": training minimises it, the Hessian is taken of it,
the robustness probe differentiates it (the attacks' own losses are in evaluators/robustness/attacks.py)."""

import tensorflow as tf


def cross_entropy(labels, logits):
  """Per-example softmax cross-entropy in nats, logsumexp_j z_j − z_y, of integer `labels` [batch] under
  `logits` [batch, classes].

  Written out rather than tf.nn.sparse_softmax_cross_entropy_with_logits, whose fused gradient cannot be
  differentiated again: Hessian-vector products (double backprop, forward-over-reverse) need plain ops. z_y is
  picked by a one-hot product, not a gather, so that its gradient is dense (no scatter, deterministic on every
  device). Half-precision logits are computed in float32.
  """
  logits = tf.convert_to_tensor(logits)
  if logits.dtype in (tf.float16, tf.bfloat16):
    logits = tf.cast(logits, tf.float32)
  true_logit = tf.reduce_sum(tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype) * logits, axis=-1)
  return tf.reduce_logsumexp(logits, axis=-1) - true_logit
