"""The PGD step in plain TensorFlow ops: the semantics of the compiled op, used when it is not built.

Pixels, eps and step_size are on the scale [0, 1]. The order of operations is cleverhans.tf2's
(fast_gradient_method, then clip_eta, then clipping to [0, 1]), so that PGD built on this step gives
cleverhans' numbers:
  x1  = clip(x + step_size * d, 0, 1)   d = sign(grad)  |  grad / sqrt(max(1e-12, ||grad||²)) per example
  eta = project(x1 - x0)                clip to [-eps, eps]  |  eta * min(1, eps / sqrt(max(1e-12, ||eta||²)))
  x'  = clip(x0 + eta, 0, 1)
Dimension 0 is the batch. float16/bfloat16 inputs are computed in float32 and rounded once, like the op.
"""

import tensorflow as tf

AVOID_ZERO_DIV = 1e-12  # cleverhans.tf2.utils puts it inside its square roots
DTYPES = (tf.float32, tf.float16, tf.bfloat16)


def linf_step(x, x0, grad, *, eps, step_size):
  """One L∞ PGD step; eps and step_size are float32 scalars on the [0, 1] pixel scale."""
  x, x0, grad, eps, step_size = _checked("pgd_step_linf", x, x0, grad, eps, step_size)
  x1 = _clip01(_f32(x) + step_size * tf.sign(_f32(grad)))
  x0f = _f32(x0)
  return tf.cast(_clip01(x0f + tf.clip_by_value(x1 - x0f, -eps, eps)), x.dtype)


def l2_step(x, x0, grad, *, eps, step_size):
  """One L2 PGD step (per-example norms); eps and step_size are float32 scalars on the [0, 1] pixel scale."""
  x, x0, grad, eps, step_size = _checked("pgd_step_l2", x, x0, grad, eps, step_size)
  g = _f32(grad)
  x1 = _clip01(_f32(x) + step_size * (g / _safe_l2_norm(g)))
  x0f = _f32(x0)
  eta = x1 - x0f
  return tf.cast(_clip01(x0f + eta * tf.minimum(1.0, eps / _safe_l2_norm(eta))), x.dtype)


STEPS = {"linf": linf_step, "l2": l2_step}


def project(eta, *, norm, eps):
  """cleverhans' clip_eta: eta into the ε-ball of `norm` ("linf" or "l2"), eps on the [0, 1] scale."""
  if norm == "linf":
    return tf.clip_by_value(eta, -eps, eps)
  return eta * tf.minimum(1.0, eps / _safe_l2_norm(eta))


def _safe_l2_norm(v):
  axes = list(range(1, v.shape.rank)) if v.shape.rank is not None else tf.range(1, tf.rank(v))
  return tf.sqrt(tf.maximum(AVOID_ZERO_DIV, tf.reduce_sum(tf.square(v), axes, keepdims=True)))


def _clip01(v):
  return tf.clip_by_value(v, 0.0, 1.0)


def _f32(v):
  return tf.cast(v, tf.float32)  # no-op for float32


def _checked(name, x, x0, grad, eps, step_size):
  """check_args, plus run-time shape checks where the static shapes leave it open (the op's kernel does both)."""
  x, x0, grad, eps, step_size = check_args(name, x, x0, grad, eps, step_size)
  if not (x.shape.is_fully_defined() and x0.shape.is_fully_defined() and grad.shape.is_fully_defined()):
    message = f"{name}: x, x0 and grad must have the same shape"
    with tf.control_dependencies([tf.debugging.assert_equal(tf.shape(x), tf.shape(x0), message=message),
                                  tf.debugging.assert_equal(tf.shape(x), tf.shape(grad), message=message)]):
      x = tf.identity(x)
  return x, x0, grad, eps, step_size


def check_args(name, x, x0, grad, eps, step_size):
  """Converts the arguments; ValueError (the op's wording) when their static shapes, dtype or eps cannot go.

  Both backends call it first, so that a bad call fails the same way whether or not the op is built.
  """
  x = tf.convert_to_tensor(x)
  if x.dtype not in DTYPES:
    raise ValueError(f"{name}: x must be float32, float16 or bfloat16; got {x.dtype.name}")
  x0 = tf.convert_to_tensor(x0, dtype=x.dtype)
  grad = tf.convert_to_tensor(grad, dtype=x.dtype)
  eps = tf.cast(eps, tf.float32)
  step_size = tf.cast(step_size, tf.float32)
  if x.shape.rank == 0:
    raise ValueError(f"{name}: x must have a batch dimension (rank >= 1); got shape {x.shape}")
  if not (x.shape.is_compatible_with(x0.shape) and x.shape.is_compatible_with(grad.shape)):
    raise ValueError(f"{name}: x, x0 and grad must have the same shape; got x {x.shape}, x0 {x0.shape}, "
                     f"grad {grad.shape}")
  for arg, value in (("eps", eps), ("step_size", step_size)):
    if value.shape.rank not in (None, 0):
      raise ValueError(f"{name}: {arg} must be a scalar; got shape {value.shape}")
  eps_value = tf.get_static_value(eps)
  if eps_value is not None and not eps_value >= 0:
    raise ValueError(f"{name}: eps must be >= 0 (pixel scale [0, 1]); got {eps_value}")
  return x, x0, grad, eps, step_size
