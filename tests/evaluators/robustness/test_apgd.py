"""evaluators/robustness apgd.py: the checkpoint formula, DLR's invariances, the ε-ball and [0, 1], ε = 0, a linear
model's analytic robust set, APGD-CE against the file's PGD on a trained MLP, seeds and batching, and no retrace
across ε and steps."""

import math

import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrobust import data
from tfrobust.evaluators.robustness import apgd, attacks

sys.path.append(os.path.dirname(__file__))  # appended: this folder's conftest.py must not shadow tests/conftest.py
from attack_nets import dense_model, size, small_fixture, two_class_linear  # noqa: E402,F401 (small_fixture: a fixture)

# Robust examples APGD-CE may keep beyond PGD (steps of ε/4), both with 20 steps. Measured on the fixture MLP
# (360 test digits, 97% clean) over the test's ε: APGD-CE minus PGD from −1 to +1 (0.3%).
PGD_TOLERANCE = 2


@pytest.fixture(scope="module")
def mlp():
  """A small MLP trained on the digits (97% clean on the 360 test images)."""
  ds = data.load_digits()
  model = dense_model((8, 8, 1), 10, seed=0, hidden=64)
  model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  model.fit(ds.x_train.astype(np.float32), ds.y_train, epochs=10, batch_size=64, verbose=0)
  return model, ds.x_test.astype(np.float32), ds.y_test.astype(np.int64)


def attack(model, x, y, *, seed=0, index=None, **kwargs):
  index = np.arange(len(x)) if index is None else index
  seeds = apgd.apgd_seeds(tf.constant(index, tf.int64), seed)
  adv, fooled = apgd.apgd(lambda images: model(images, training=False), tf.constant(x), tf.constant(y), seeds,
                          **kwargs)
  return adv.numpy(), fooled.numpy()


def test_checkpoints_follow_the_formula():
  p = [0.0, 0.22]  # In floats, against the integer hundredths of the module.
  while p[-1] + max(p[-1] - p[-2] - 0.03, 0.06) <= 1.0:
    p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
  assert apgd.checkpoint_fractions() == [round(100 * v) for v in p] == [0, 22, 41, 57, 70, 80, 87, 93, 99]
  for steps in list(range(1, 40)) + [100, 250, 1000]:
    want = [math.ceil(round(v * steps, 9)) for v in p]
    np.testing.assert_array_equal(apgd.checkpoints(tf.constant(steps)).numpy(), want, err_msg=str(steps))
  # The reference's windows for 100 steps: 22, then 3 shorter each time, never below 6.
  np.testing.assert_array_equal(apgd.checkpoints(100).numpy()[1:], np.cumsum([22, 19, 16, 13, 10, 7, 6, 6]))


def test_dlr_is_invariant_to_shifting_and_scaling_the_logits():
  rng = np.random.default_rng(1)
  z = rng.normal(size=(50, 10)).astype(np.float32) * 3
  y = rng.integers(0, 10, size=50)
  t = (y + rng.integers(1, 10, size=50)) % 10
  top = -np.sort(-z, axis=1)
  others = np.where(np.eye(10)[y] > 0, -np.inf, z).max(axis=1)
  zy, zt = z[np.arange(50), y], z[np.arange(50), t]
  np.testing.assert_allclose(apgd.dlr(y, z), -(zy - others) / (top[:, 0] - top[:, 2]), rtol=1e-5)
  np.testing.assert_allclose(apgd.dlr_targeted(y, z, t), -(zy - zt) / (top[:, 0] - (top[:, 2] + top[:, 3]) / 2),
                             rtol=1e-5)
  for scale in (0.1, 7.0, 1000.0):
    shifted = scale * z + rng.normal(size=(50, 1)).astype(np.float32) * 10
    np.testing.assert_allclose(apgd.dlr(y, shifted), apgd.dlr(y, z), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(apgd.dlr_targeted(y, shifted, t), apgd.dlr_targeted(y, z, t), rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="at least 3 classes"):
    apgd.dlr(y[:3] % 2, z[:3, :2])
  with pytest.raises(ValueError, match="at least 4 classes"):
    apgd.dlr_targeted(y[:3] % 3, z[:3, :3], t[:3] % 3)


@pytest.mark.parametrize("norm,eps", [("inf", 0.05), ("inf", 0.3), ("2", 0.5), ("2", 3.0)])
def test_examples_stay_in_the_eps_ball_and_in_0_1(small, norm, eps):
  model, x, y = small
  for loss in ("ce", "dlr"):
    adv, fooled = attack(model, x, y, eps=eps, norm=norm, steps=6, loss=loss, restarts=2)
    assert size(adv - x, norm).max() <= eps + 1e-6, loss
    assert size(adv - x, norm).max() > eps / 2, loss  # the attack did move the images
    assert adv.min() >= 0 and adv.max() <= 1, loss
    np.testing.assert_array_equal(fooled, np.argmax(model(adv).numpy(), axis=1) != y)


def test_eps_zero_is_the_identity(small):
  model, x, y = small
  wrong = np.argmax(model(x).numpy(), axis=1) != y
  assert 0 < wrong.sum() < len(y)
  for norm in ("inf", "2"):
    for loss in ("ce", "dlr"):
      adv, fooled = attack(model, x, y, eps=0.0, norm=norm, steps=5, loss=loss, restarts=2)
      np.testing.assert_array_equal(adv, x)
      np.testing.assert_array_equal(fooled, wrong)


def test_two_class_linear_model_reaches_its_analytic_robust_set_like_fgsm():
  """For z = W·x + b with two classes one FGSM step is the exact worst case; APGD must find every example FGSM
  fools, and never fool a provably robust one."""
  model, x, y, w = two_class_linear()
  slack = np.abs(x.reshape(200, -1) @ (w[:, 1] - w[:, 0]) - 0.5 * (w[:, 1] - w[:, 0]).sum())
  for norm, eps in (("inf", 0.02), ("2", 0.08)):
    dual = np.abs(w[:, 1] - w[:, 0]).sum() if norm == "inf" else np.linalg.norm(w[:, 1] - w[:, 0])
    robust = slack > eps * dual  # the box [0, 1] never binds: x ± ε stays inside
    assert 0.2 < robust.mean() < 0.8
    fgsm = attacks.fgsm(lambda images: model(images), tf.constant(x), tf.constant(y), eps=eps, norm=norm)
    fgsm_fooled = np.argmax(model(fgsm).numpy(), axis=1) != y
    _, fooled = attack(model, x, y, eps=eps, norm=norm, steps=10, loss="ce")
    assert not np.any(fgsm_fooled & ~fooled)  # at least as strong as FGSM, example by example
    np.testing.assert_array_equal(fooled, ~robust)


def test_apgd_ce_is_at_least_as_strong_as_pgd_with_as_many_steps(mlp):
  model, x, y = mlp
  model_fn = lambda images: model(images, training=False)  # noqa: E731
  index = tf.range(len(x), dtype=tf.int64)
  for norm, grid in (("inf", (0.02, 0.05, 0.1)), ("2", (0.2, 0.5))):
    pgd = tf.function(lambda eps: attacks.attack_batch(  # noqa: B023
        model_fn, tf.constant(x), tf.constant(y), index, attack="pgd", norm=norm, loss="ce",  # noqa: B023
        seed=tf.constant(0, tf.int64), eps=eps, step_size=eps / 4, steps=tf.constant(20), restarts=tf.constant(1)))
    run = tf.function(lambda eps: apgd.apgd(model_fn, tf.constant(x), tf.constant(y), apgd.apgd_seeds(index, 0),
                                            eps=eps, norm=norm, steps=20))  # noqa: B023
    for eps in grid:
      pgd_robust = (np.argmax(model(pgd(tf.constant(eps))).numpy(), axis=1) == y).sum()
      adv, fooled = run(tf.constant(eps))
      assert 0 < pgd_robust < len(y) - 20, (norm, eps)  # PGD has something to find and something left to find
      assert (~fooled.numpy()).sum() <= pgd_robust + PGD_TOLERANCE, (norm, eps)


def test_same_seeds_same_examples_whatever_the_batching(small):
  model, x, y = small
  for norm, eps in (("inf", 0.1), ("2", 1.0)):
    kwargs = dict(eps=eps, norm=norm, steps=8, loss="dlr", restarts=2)
    adv, fooled = attack(model, x, y, seed=3, **kwargs)
    again, _ = attack(model, x, y, seed=3, **kwargs)
    np.testing.assert_array_equal(adv, again)
    parts = [attack(model, x[k:k + 9], y[k:k + 9], seed=3, index=np.arange(k, min(k + 9, len(x))), **kwargs)
             for k in range(0, len(x), 9)]
    np.testing.assert_allclose(np.concatenate([p[0] for p in parts]), adv, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), fooled)
    assert np.abs(attack(model, x, y, seed=4, **kwargs)[0] - adv).max() > eps / 4  # the seed does matter


def test_one_trace_serves_every_eps_and_step_count(small):
  model, x, y = small
  seeds = apgd.apgd_seeds(tf.range(len(x), dtype=tf.int64), 0)
  run = tf.function(lambda eps, steps: apgd.apgd(lambda images: model(images, training=False), tf.constant(x),
                                                 tf.constant(y), seeds, eps=eps, norm="inf", steps=steps))
  for eps, steps in ((0.1, 3), (0.2, 7), (0.0, 1)):
    run(tf.constant(eps), tf.constant(steps))
  assert run.experimental_get_tracing_count() == 1


def test_targeted_runs_stay_in_the_ball_and_fool_at_least_one_target(mlp):
  model, x, y = mlp
  x, y = x[:60], y[:60]
  seeds = apgd.apgd_seeds(tf.range(len(x), dtype=tf.int64), 0)
  model_fn = lambda images: model(images, training=False)  # noqa: E731
  adv, fooled = apgd.apgd_targeted(model_fn, tf.constant(x), tf.constant(y), seeds, eps=0.1, norm="inf", steps=10,
                                   targets=3)
  assert size(adv.numpy() - x, "inf").max() <= 0.1 + 1e-6
  np.testing.assert_array_equal(fooled.numpy(), np.argmax(model(adv).numpy(), axis=1) != y)
  second = tf.math.top_k(model(x), 2).indices[:, 1]  # one targeted run towards the runner-up class
  _, towards = apgd.apgd(model_fn, tf.constant(x), tf.constant(y), seeds, eps=0.1, norm="inf", steps=10,
                         loss="dlr_targeted", target=second)
  assert towards.numpy().sum() > 10 and not np.any(towards.numpy() & ~fooled.numpy())
  with pytest.raises(ValueError, match="target="):
    apgd.apgd(model_fn, tf.constant(x), tf.constant(y), seeds, eps=0.1, norm="inf", steps=1, loss="dlr_targeted")
  with pytest.raises(ValueError, match="norm="):
    apgd.apgd(model_fn, tf.constant(x), tf.constant(y), seeds, eps=0.1, norm="1", steps=1)


def test_a_model_blind_to_its_input_is_never_fooled():
  """Zero gradients everywhere (logits do not depend on x): no step moves the prediction."""
  x = np.random.default_rng(3).uniform(size=(12, 8, 8, 1)).astype(np.float32)
  logits = tf.constant(np.tile(np.arange(10, dtype=np.float32), (12, 1)))
  y = np.full(12, 9)
  y[:3] = 0  # wrong from the start: fooled, unchanged
  seeds = apgd.apgd_seeds(tf.range(12, dtype=tf.int64), 0)
  for loss in ("ce", "dlr"):
    adv, fooled = apgd.apgd(lambda images: logits + 0.0 * tf.reduce_sum(images), tf.constant(x), tf.constant(y),
                            seeds, eps=0.3, norm="inf", steps=10, loss=loss, restarts=2)
    np.testing.assert_array_equal(fooled.numpy(), y == 0)
    np.testing.assert_array_equal(adv.numpy()[:3], x[:3])
    assert size(adv.numpy() - x, "inf").max() <= 0.3 + 1e-6
