"""Helpers of the fused PGD step's tests (tests/ops/): cleverhans's own PGD iteration as the independent reference,
inputs that make both the [0, 1] clip and the projection bite, and the compiled op library (built once per process
when it can be; None otherwise)."""

import functools
import os

import numpy as np
import tensorflow as tf
from cleverhans.tf2.utils import clip_eta, optimize_linear

from tfrobust import ops
from tfrobust.ops import build, fallback

ORD = {"linf": np.inf, "l2": 2}
# eps, step_size per norm: large enough that both the [0, 1] clip and the projection are active.
SETTINGS = {"linf": (0.1, 0.04), "l2": (0.5, 0.3)}
SHAPES = [(4, 8, 8, 1), (3, 28, 28, 1), (2, 32, 32, 3), (5, 17), (257, 8, 8, 1)]
ULP_AT_ONE = {tf.float16: 2.0 ** -10, tf.bfloat16: 2.0 ** -7}
NO_LIBRARY = "the op library is not built (tfrobust.ops.build logged why, or TFROBUST_DISABLE_OPS is set)"


@functools.lru_cache(maxsize=None)
def library():
  """The compiled op library (built if stale), or None; tfrobust.ops then re-decides its implementation."""
  if os.environ.get(ops.DISABLE_ENV, "0") not in ("", "0"):
    return None
  path = build.build(verbose=False)
  if path is None:
    return None
  ops._decided = False  # pylint: disable=protected-access  (it may have looked before the build)
  return tf.load_op_library(path)


def compiled_step(library, norm):
  op = library.pgd_step_linf if norm == "linf" else library.pgd_step_l2
  return lambda x, x0, g, *, eps, step_size: op(x=x, x0=x0, grad=g, eps=eps, step_size=step_size)


def steps_under_test(library, norm):
  """The fallback always, the compiled op when it is built."""
  found = [("fallback", fallback.STEPS[norm])]
  return found + ([("compiled", compiled_step(library, norm))] if library is not None else [])


def cleverhans_step(x, x0, grad, *, eps, step_size, norm):
  """One iteration of cleverhans' PGD loop given the gradient: FGM's update and clip, then clip_eta, clip."""
  adv = tf.clip_by_value(x + optimize_linear(grad, step_size, ORD[norm]), 0.0, 1.0)
  return tf.clip_by_value(x0 + clip_eta(adv - x0, ORD[norm], eps), 0.0, 1.0)


def random_inputs(shape, eps, seed=0):
  """x0 in [0, 1] with a tenth of its pixels exactly 0 or 1, x up to 1.5 eps away, grad never zero."""
  rng = np.random.default_rng(seed)
  x0 = rng.uniform(size=shape)
  edge = rng.uniform(size=shape) < 0.1
  x0[edge] = rng.integers(0, 2, size=edge.sum())
  x = np.clip(x0 + rng.uniform(-1.5, 1.5, size=shape) * eps, 0, 1)
  g = rng.normal(size=shape)
  g += np.where(g >= 0, 1e-3, -1e-3)
  return [tf.constant(v, tf.float32) for v in (x, x0, g)]


def assert_not_trivial(got, x, x0, g, *, norm, eps, step_size):
  """Pixels moved, the step left [0, 1] on both sides, and the projection was active."""
  shape = got.shape
  xn, x0n, gn = x.numpy(), x0.numpy(), g.numpy().reshape(shape[0], -1)
  assert np.abs(got - xn).max() > 0.5 * step_size
  if norm == "linf":
    moved = xn + step_size * np.sign(g.numpy())
    assert (got == 0).any() and (got == 1).any()
    assert (np.abs(np.clip(moved, 0, 1) - x0n) > eps).any() and (np.abs(got - x0n) <= eps + 1e-7).all()
  else:
    moved = xn + step_size * (gn / np.linalg.norm(gn, axis=1, keepdims=True)).reshape(shape)
    eta = lambda v: np.linalg.norm((v - x0n).reshape(shape[0], -1), axis=1)
    assert eta(np.clip(moved, 0, 1)).max() > eps and eta(got).max() <= eps * (1 + 1e-6)
  assert (moved < 0).any() and (moved > 1).any()
