"""PGD (Madry et al. 2018) whose inner step is the fused op: cleverhans' PGD, same start, same numbers.

Units: images on the [0, 1] pixel scale; eps and step_size on that scale, in the attack's norm.

`pgd` has the signature of tfrobust.attacks.pgd (the cleverhans path) and runs inside any graph;
`fused_pgd` is the stand-alone call, compiled once per (model_fn, norm, step_impl). The gradient is the
one cleverhans takes (compute_gradient: the loss of the batch at the current point, w.r.t. that point);
only the update after it is fused. step_impl picks the update:
  "fused": tfrobust.ops (the compiled op when built, else its pure-TF fallback; ops.backend() says which)
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


def cross_entropy(labels, logits):
  """cleverhans' default loss: per-example softmax cross-entropy on logits."""
  return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


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


def pgd(model_fn, x, y, start, *, eps, norm, steps, step_size, loss_fn=cross_entropy, step_impl="fused"):
  """`steps` projected steps of `step_size` from x + `start`; tfrobust.attacks.pgd with the step fused.

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


def fused_pgd(model_fn, x, y=None, *, eps, step_size, steps, norm, rand_init=None, loss_fn=cross_entropy,
              step_impl="fused"):
  """Adversarial examples by PGD with the fused step; equal to cleverhans' projected_gradient_descent
  (clip_min=0, clip_max=1) from the same start.

  model_fn: images in [0, 1] -> logits. x: clean images, float32, dimension 0 the batch.
  y: integer labels; None attacks the model's own predictions (as cleverhans does).
  eps: radius of the ball on the [0, 1] pixel scale, in `norm`. step_size: per-step move on that scale
    (cleverhans' eps_iter), ≤ eps. steps: number of steps (nb_iter). norm: np.inf or 2.
  rand_init: None starts at x (Kurakin's BIM); a tensor shaped like x is the start perturbation (cleverhans
    draws it with random_lp_vector); an int seeds a stateless draw uniform in the ε-ball.
  step_impl: "fused", "tf" or "xla" (module docstring).
  """
  norm = norm_name(norm)
  if not 0 <= step_size <= eps:
    raise ValueError(f"step_size={step_size}, eps={eps}: need 0 <= step_size <= eps (as cleverhans asserts)")
  if int(steps) != steps or steps < 0:
    raise ValueError(f"steps={steps}: need a non-negative integer")
  x = tf.convert_to_tensor(x, dtype=tf.float32)
  if y is None:
    y = tf.argmax(model_fn(x), 1)
  if rand_init is None:
    start = tf.zeros_like(x)
  elif isinstance(rand_init, (int, np.integer)) and not isinstance(rand_init, bool):
    start = random_start(tf.shape(x), norm=norm, eps=eps, seed=int(rand_init))
  else:
    start = tf.convert_to_tensor(rand_init, dtype=x.dtype)
  attack = _compiled(model_fn, norm, loss_fn, step_impl)
  return attack(x, tf.convert_to_tensor(y), start, tf.constant(eps, tf.float32),
                tf.constant(step_size, tf.float32), tf.constant(int(steps), tf.int32))


@functools.lru_cache(maxsize=8)
def _compiled(model_fn, norm, loss_fn, step_impl):
  @tf.function
  def attack(x, y, start, eps, step_size, steps):
    return pgd(model_fn, x, y, start, eps=eps, norm=norm, steps=steps, step_size=step_size, loss_fn=loss_fn,
               step_impl=step_impl)
  return attack


def random_start(shape, *, norm, eps, seed):
  """A perturbation uniform in the ε-ball (cleverhans' distributions), from a stateless seed."""
  seed = tf.constant([seed, 0], tf.int64)
  if norm_name(norm) == "linf":
    return tf.random.stateless_uniform(shape, seed, -eps, eps)
  batch, dim = shape[0], tf.reduce_prod(shape[1:])
  direction = tf.random.stateless_normal([batch, dim], seed)
  direction /= tf.norm(direction, axis=1, keepdims=True)
  radius = tf.pow(tf.random.stateless_uniform([batch, 1], seed + [0, 1]), 1.0 / tf.cast(dim, tf.float32))
  return tf.reshape(eps * radius * direction, shape)
