"""bench/fused_step.py's PGD, whose update can be the fused op, the same expression in plain TF ops, or that
expression compiled by XLA: the three contestants of the benchmark. tfrobust itself runs PGD in one place,
tfrobust/evaluators/robustness/attacks.py (`pgd`, backend "cleverhans" or "fused"); this is the benchmark's
harness, not a second path (its numbers equal that one's: tests/ops/test_ops.py checks the fused backend).

Units: images on the [0, 1] pixel scale; eps and step_size on that scale, in the attack's norm.
The gradient is the one cleverhans takes (compute_gradient: the loss of the batch at the current point, w.r.t.
that point); only the update after it changes. step_impl picks the update:
  "fused": tfrobust.ops (the compiled op when built, else its pure-TF fallback; ops.implementation() says which)
  "tf":    the pure-TF expression (tfrobust.ops.fallback), unfused
  "xla":   the pure-TF expression compiled by XLA (tf.function(jit_compile=True))
"""

import functools

import numpy as np
import tensorflow as tf

from tfrobust import ops
from tfrobust.ops import fallback

STEP_IMPLS = ("fused", "tf", "xla")
_NORMS = {np.inf: "linf", "inf": "linf", "linf": "linf", 2: "l2", "2": "l2", "l2": "l2"}


def norm_name(norm):
  """"linf" or "l2" for np.inf / "inf" / "linf" or 2 / "2" / "l2"; ValueError otherwise."""
  try:
    return _NORMS[norm]
  except (KeyError, TypeError):
    raise ValueError(f"norm={norm!r}: PGD supports np.inf (or 'inf') and 2 (or '2')") from None


def step_fn(norm, step_impl="fused"):
  """The update x' = f(x, x0, grad, eps=, step_size=) of one PGD step for `norm` and `step_impl`."""
  norm = norm_name(norm)
  if step_impl == "fused":
    return ops.pgd_step_linf if norm == "linf" else ops.pgd_step_l2
  if step_impl == "tf":
    return fallback.STEPS[norm]
  if step_impl == "xla":
    return _xla_step(norm)
  raise ValueError(f"step_impl={step_impl!r}: expected one of {', '.join(STEP_IMPLS)}")


@functools.lru_cache(maxsize=None)
def _xla_step(norm):
  step = fallback.STEPS[norm]
  return tf.function(lambda x, x0, grad, eps, step_size: step(x, x0, grad, eps=eps, step_size=step_size),
                     jit_compile=True)


def pgd(model_fn, x, y, start, *, eps, norm, steps, step_size, loss_fn, step_impl="fused"):
  """`steps` projected steps of `step_size` from x + `start`; attacks.pgd with the update of `step_impl`.

  model_fn: images in [0, 1] -> logits. x: clean images. y: integer labels (the attack raises their loss).
  start: a perturbation (zeros for no random start), projected into the ε-ball first, as cleverhans does.
  eps, step_size: scalars on the [0, 1] scale (tensors do not retrace); steps: int scalar.
  """
  norm = norm_name(norm)
  step = step_fn(norm, step_impl)
  eps = tf.cast(eps, tf.float32)
  step_size = tf.cast(step_size, tf.float32)
  start = tf.convert_to_tensor(start, dtype=x.dtype)
  adv = tf.clip_by_value(x + fallback.project(start, norm=norm, eps=eps), 0.0, 1.0)

  def body(i, adv):
    with tf.GradientTape() as tape:
      tape.watch(adv)
      loss = loss_fn(labels=y, logits=model_fn(adv))
    grad = tape.gradient(loss, adv)
    return i + 1, step(adv, x, grad, eps=eps, step_size=step_size)

  steps = tf.convert_to_tensor(steps)
  _, adv = tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0, steps.dtype), adv))
  return adv
