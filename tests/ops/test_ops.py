"""tfrobust.ops (ops/__init__.py and the compiled op it loads): the compiled step equals the fallback; the wrapper
raises the same clear errors with either implementation, uses the compiled op (no gradient) when it loads and the
fallback when the library is absent, broken or disabled; PGD with the fused step (attacks.pgd, backend="fused")
equals cleverhans PGD from the same start. Reference: cleverhans's own step and PGD (pgd_reference.py).

Tests of the compiled op skip, saying why, when the library does not build (or when TFROBUST_DISABLE_OPS=1, which
runs the whole file on the fallback); the semantics of the step itself: test_fallback.py.
"""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent
from cleverhans.tf2.utils import clip_eta, random_lp_vector

from conftest import run_script
from tfrobust import models, ops
from tfrobust.evaluators.robustness import attacks
from tfrobust.ops import fallback

sys.path.insert(0, os.path.dirname(__file__))  # pytest runs with --import-mode=importlib
import pgd_reference  # noqa: E402  pylint: disable=wrong-import-position
from pgd_reference import (  # noqa: E402
    NO_LIBRARY, ORD, SETTINGS, SHAPES, assert_not_trivial, cleverhans_step, compiled_step, random_inputs)


@pytest.fixture
def library():
  return pgd_reference.library()


@pytest.fixture
def compiled(library):
  if library is None:
    pytest.skip(NO_LIBRARY)
  return library


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_op_equals_fallback(compiled, norm, shape):
  eps, step_size = SETTINGS[norm]
  x, x0, g = random_inputs(shape, eps)
  got = compiled_step(compiled, norm)(x, x0, g, eps=eps, step_size=step_size).numpy()
  want = fallback.STEPS[norm](x, x0, g, eps=eps, step_size=step_size).numpy()
  if norm == "linf":
    np.testing.assert_array_equal(got, want)  # elementwise, the same float32 operations: bit-identical
  else:
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # the norms differ only in summation order
  assert_not_trivial(got, x, x0, g, norm=norm, eps=eps, step_size=step_size)


@pytest.mark.parametrize("use_library", [False, True], ids=["fallback", "compiled"])
def test_wrapper_errors_are_the_same_for_both_implementations(library, monkeypatch, tmp_path, use_library):
  if use_library and library is None:
    pytest.skip(NO_LIBRARY)
  if not use_library:
    monkeypatch.setattr(ops, "LIBRARY_PATH", str(tmp_path / "missing.so"))
    monkeypatch.setattr(ops, "_decided", False)
    monkeypatch.setattr(ops, "_library", None)
  assert ops.implementation() == ("compiled" if use_library else "fallback")
  x, x0, g = random_inputs((4, 8, 8, 1), 0.1)
  for step in (ops.pgd_step_linf, ops.pgd_step_l2):
    with pytest.raises(ValueError, match="x, x0 and grad must have the same shape; got x"):
      step(x, x0, g[:2], eps=0.1, step_size=0.01)
    with pytest.raises(ValueError, match="x, x0 and grad must have the same shape"):
      step(x, x0[..., :0], g, eps=0.1, step_size=0.01)
    with pytest.raises(ValueError, match="eps must be a scalar"):
      step(x, x0, g, eps=[0.1, 0.2], step_size=0.01)
    with pytest.raises(ValueError, match=r"eps must be >= 0 \(pixel scale"):
      step(x, x0, g, eps=-0.1, step_size=0.01)
    with pytest.raises(ValueError, match="batch dimension"):
      step(1.0, 1.0, 1.0, eps=0.1, step_size=0.01)
    with pytest.raises(ValueError, match="must be float32, float16 or bfloat16; got float64"):
      step(tf.cast(x, tf.float64), x0, g, eps=0.1, step_size=0.01)
    # Shapes known only at run time: a clear run-time error, not wrong numbers.
    unknown = tf.function(lambda a, b: step(a, b, a, eps=0.1, step_size=0.01),
                          input_signature=[tf.TensorSpec(None, tf.float32)] * 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="x, x0 and grad must have the same shape"):
      unknown(x, x0[:2])


def test_raw_op_errors_are_clear(compiled):
  x, x0, g = random_inputs((4, 8, 8, 1), 0.1)
  op = compiled_step(compiled, "linf")
  with pytest.raises(tf.errors.InvalidArgumentError, match="x, x0 and grad must have the same shape"):
    op(x, x0[:, :4], g, eps=0.1, step_size=0.01)  # eager: the kernel's check
  with pytest.raises(tf.errors.InvalidArgumentError, match="eps must be a scalar"):
    op(x, x0, g, eps=[0.1, 0.2], step_size=0.01)
  with pytest.raises(tf.errors.InvalidArgumentError, match="eps must be >= 0"):
    op(x, x0, g, eps=-0.1, step_size=0.01)
  with pytest.raises(ValueError, match="x, x0 and grad must have the same shape"):  # traced: the shape function
    tf.function(lambda a, b: op(a, b, a, eps=0.1, step_size=0.01))(x, x0[:, :4])
  with pytest.raises(ValueError, match="batch dimension"):
    tf.function(lambda a: op(a, a, a, eps=0.1, step_size=0.01))(tf.constant(0.5))


def test_wrapper_uses_the_compiled_op_without_gradient(compiled):
  assert ops.implementation() == "compiled"
  x, x0, g = random_inputs((4, 8, 8, 1), 0.1)
  with tf.GradientTape() as tape:
    tape.watch(x)
    out = ops.pgd_step_l2(x, x0, g, eps=0.5, step_size=0.3)
  assert tape.gradient(out, x) is None  # registered not differentiable
  np.testing.assert_array_equal(out.numpy(), compiled_step(compiled, "l2")(x, x0, g, eps=0.5, step_size=0.3))
  assert tf.function(lambda a: ops.pgd_step_l2(a, x0, g, eps=0.5, step_size=0.3))(x).shape == x.shape


@pytest.mark.parametrize("why", ["missing", "broken"])
def test_fallback_when_library_is_absent_or_broken(library, monkeypatch, tmp_path, why):
  path = tmp_path / "_pgd_step_ops.so"
  if why == "broken":
    path.write_bytes(b"not a shared library")
  monkeypatch.setattr(ops, "LIBRARY_PATH", str(path))
  monkeypatch.setattr(ops, "_decided", False)
  monkeypatch.setattr(ops, "_library", None)
  assert ops.implementation() == "fallback"
  x, x0, g = random_inputs((3, 28, 28, 1), 0.5)
  for norm, step in (("linf", ops.pgd_step_linf), ("l2", ops.pgd_step_l2)):
    eps, step_size = SETTINGS[norm]
    got = step(x, x0, g, eps=eps, step_size=step_size).numpy()
    want = cleverhans_step(x, x0, g, eps=eps, step_size=step_size, norm=norm).numpy()
    np.testing.assert_array_equal(got, want)
    if library is not None:
      np.testing.assert_allclose(got, compiled_step(library, norm)(x, x0, g, eps=eps, step_size=step_size),
                                 rtol=0, atol=1e-6)


def test_disable_env_var_takes_the_fallback_in_a_fresh_process(tmp_path):
  code = f"""
import numpy as np, tensorflow as tf
from tfrobust import ops
rng = np.random.default_rng(3)
x0 = tf.constant(rng.uniform(size=(4, 8, 8, 1)), tf.float32)
g = tf.constant(rng.normal(size=(4, 8, 8, 1)), tf.float32)
np.save({str(tmp_path / 'out.npy')!r}, ops.pgd_step_l2(x0, x0, g, eps=0.5, step_size=0.3).numpy())
print(ops.implementation())
"""
  done = run_script(code, env={ops.DISABLE_ENV: "1"}, timeout=120)
  assert done.returncode == 0, done.stderr
  assert done.stdout.split()[-1] == "fallback"
  rng = np.random.default_rng(3)
  x0 = tf.constant(rng.uniform(size=(4, 8, 8, 1)), tf.float32)
  g = tf.constant(rng.normal(size=(4, 8, 8, 1)), tf.float32)
  want = cleverhans_step(x0, x0, g, eps=0.5, step_size=0.3, norm="l2").numpy()
  np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), want)


@pytest.fixture(scope="module")
def tiny_model():
  model = models.build_model("lenet", (8, 8, 1), 10, seed=0)
  rng = np.random.default_rng(4)
  x = tf.constant(rng.uniform(size=(16, 8, 8, 1)), tf.float32)
  y = tf.constant(rng.integers(0, 10, size=16), tf.int64)
  return (lambda images: model(images, training=False)), x, y


@pytest.mark.parametrize("norm,eps,step_size", [("inf", 0.1, 0.02), ("2", 1.0, 0.25)])
def test_fused_pgd_equals_cleverhans_pgd_from_the_same_start(library, tiny_model, norm, eps, step_size):
  """The one PGD loop (evaluators/robustness/attacks.py) with backend="fused" — the compiled op when it is built,
  else its fallback — against cleverhans's own projected_gradient_descent, with cleverhans's loss."""
  del library  # built first, so "fused" runs the compiled op when there is one
  model_fn, x, y = tiny_model
  ord_ = ORD["linf" if norm == "inf" else "l2"]
  loss_fn = tf.nn.sparse_softmax_cross_entropy_with_logits  # cleverhans's default
  tf.random.set_seed(11)
  want = projected_gradient_descent(model_fn, x, eps, step_size, 10, ord_, clip_min=0.0, clip_max=1.0, y=y,
                                    rand_init=True).numpy()
  tf.random.set_seed(11)  # the same draw cleverhans made first
  start = random_lp_vector(tf.shape(x), ord_, tf.cast(eps, x.dtype), dtype=x.dtype)
  for backend in ("cleverhans", "fused"):
    got = tf.function(lambda backend=backend: attacks.pgd(
        model_fn, x, y, start, eps=tf.constant(eps), norm=norm, steps=tf.constant(10),
        step_size=tf.constant(step_size), loss_fn=loss_fn, backend=backend))().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=f"{backend} ({ops.implementation()})")
  # The attack did work: it moved away from its start and raised the loss.
  start_x = tf.clip_by_value(x + clip_eta(start, ord_, eps), 0.0, 1.0)
  assert np.abs(want - start_x.numpy()).max() > step_size / 2
  loss = lambda images: loss_fn(y, model_fn(images)).numpy().mean()  # noqa: E731
  assert loss(want) > loss(start_x)
