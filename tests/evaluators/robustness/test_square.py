"""evaluators/robustness square.py: the budget check, the p schedule, the L2 pattern against the reference's loops,
the ε-ball and [0, 1], ε = 0, queries spent only on examples not fooled yet, a constant model never fooled, a
linear model's analytic robust set, seeds and batching."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.evaluators.robustness import square

sys.path.append(os.path.dirname(__file__))  # appended: this folder's conftest.py must not shadow tests/conftest.py
from attack_nets import size, small_fixture, two_class_linear  # noqa: E402,F401 (small_fixture: a fixture)


def attack(model_fn, x, y, *, seed=0, index=None, **kwargs):
  index = np.arange(len(x)) if index is None else index
  seeds = square.square_seeds(tf.constant(index, tf.int64), seed)
  adv, fooled, used = square.square(model_fn, tf.constant(x), tf.constant(y), seeds, **kwargs)
  return adv.numpy(), fooled.numpy(), used.numpy()


def reference_eta(side):
  """autoattack/square.py's eta (L2), its loops transcribed to numpy."""
  def rectangles(rows, cols):
    delta = np.zeros([rows, cols])
    corner = [rows // 2, cols // 2]
    for k in range(max(rows // 2 + 1, cols // 2 + 1)):
      delta[max(corner[0], 0):min(corner[0] + 2 * k + 1, rows), max(corner[1], 0):min(corner[1] + 2 * k + 1, cols)] \
          += 1.0 / (k + 1) ** 2
      corner = [corner[0] - 1, corner[1] - 1]
    return delta / np.sqrt((delta ** 2).sum()) if delta.size else delta
  delta = np.concatenate([rectangles(side // 2, side), -rectangles(side - side // 2, side)])
  return delta / np.sqrt((delta ** 2).sum())


def test_a_budget_of_no_queries_is_refused(small):
  model, x, y = small
  for budget in (0, -3, tf.constant(0)):
    with pytest.raises(ValueError, match="query budget must be > 0"):
      attack(model, x, y, eps=0.1, norm="inf", queries=budget)
  compiled = tf.function(lambda q: attack_graph(model, x, y, q))
  with pytest.raises(tf.errors.InvalidArgumentError, match="query budget must be > 0"):
    compiled(tf.constant(0))


def attack_graph(model, x, y, queries):
  seeds = square.square_seeds(tf.range(len(x), dtype=tf.int64), 0)
  return square.square(model, tf.constant(x), tf.constant(y), seeds, eps=0.1, norm="inf", queries=queries)


def test_p_halves_at_the_rescaled_iterations():
  at = lambda budget, *its: [float(square.p_schedule(i, budget, 0.8)) for i in its]  # noqa: E731
  np.testing.assert_allclose(at(10_000, 0, 10, 11, 50, 51, 200, 201, 8000, 8001, 9999),
                             0.8 / np.array([1, 1, 2, 2, 4, 4, 8, 256, 512, 512]), rtol=1e-6)
  np.testing.assert_allclose(at(1000, 0, 1, 2, 5, 6, 999), 0.8 / np.array([1, 1, 2, 2, 4, 512]), rtol=1e-6)


def test_l2_pattern_matches_the_reference():
  for side in range(1, 12):
    np.testing.assert_allclose(square.eta(side).numpy(), reference_eta(side), rtol=0, atol=1e-6, err_msg=side)


@pytest.mark.parametrize("norm,eps", [("inf", 0.05), ("inf", 0.3), ("2", 0.5), ("2", 3.0)])
def test_examples_stay_in_the_eps_ball_and_in_0_1(small, norm, eps):
  model, x, y = small
  adv, fooled, _ = attack(model, x, y, eps=eps, norm=norm, queries=40)
  assert size(adv - x, norm).max() <= eps + 1e-6
  assert size(adv - x, norm).max() > eps / 2  # the attack did move the images
  assert adv.min() >= 0 and adv.max() <= 1
  np.testing.assert_array_equal(fooled, np.argmax(model(adv).numpy(), axis=1) != y)


def test_eps_zero_is_the_identity(small):
  model, x, y = small
  wrong = np.argmax(model(x).numpy(), axis=1) != y
  for norm in ("inf", "2"):
    adv, fooled, _ = attack(model, x, y, eps=0.0, norm=norm, queries=20)
    np.testing.assert_array_equal(adv, x)
    np.testing.assert_array_equal(fooled, wrong)


def test_only_examples_not_fooled_yet_consume_queries(small):
  model, x, y = small
  rows = tf.Variable(0, dtype=tf.int64)

  def counting(images):  # the model counts the examples it is shown
    rows.assign_add(tf.cast(tf.shape(images)[0], tf.int64))
    return model(images, training=False)

  budget = 60
  wrong = np.argmax(model(x).numpy(), axis=1) != y
  for norm, eps in (("inf", 0.15), ("2", 1.0)):
    rows.assign(0)
    _, fooled, used = attack(counting, x, y, eps=eps, norm=norm, queries=budget)
    assert 0 < (fooled & ~wrong).sum() and (~fooled).sum() > 0  # some fooled by the attack, some not
    np.testing.assert_array_equal(used[wrong], 0)
    np.testing.assert_array_equal(used[~fooled], budget)
    assert used[fooled & ~wrong].min() >= 1 and used[fooled & ~wrong].mean() < budget / 2
    assert rows.numpy() == len(x) + used.sum()  # the clean pass, then only the examples still to fool


def test_a_model_blind_to_its_input_is_never_fooled():
  x = np.random.default_rng(3).uniform(size=(12, 8, 8, 1)).astype(np.float32)
  logits = np.tile(np.arange(10, dtype=np.float32), (12, 1))
  y = np.full(12, 9)
  y[:3] = 0  # wrong from the start: fooled, unchanged, no queries
  model_fn = lambda images: tf.gather(tf.constant(logits), tf.zeros(tf.shape(images)[0], tf.int32))  # noqa: E731
  for norm, eps in (("inf", 0.3), ("2", 2.0)):
    adv, fooled, used = attack(model_fn, x, y, eps=eps, norm=norm, queries=30)
    np.testing.assert_array_equal(fooled, y == 0)
    np.testing.assert_array_equal(used, np.where(y == 0, 0, 30))
    np.testing.assert_array_equal(adv[:3], x[:3])
    assert size(adv - x, norm).max() <= eps + 1e-6


def test_linear_model_never_beyond_its_analytic_robust_set():
  """z = W·x + b with two classes: the worst L∞ perturbation is the vertex ε·sign(w₁ − w₀), which the search over
  vertices should mostly find; a provably robust example is never fooled."""
  model, x, y, w = two_class_linear()
  diff = w[:, 1] - w[:, 0]
  slack = np.abs(x.reshape(200, -1) @ diff - 0.5 * diff.sum())
  eps = 0.02
  robust = slack > eps * np.abs(diff).sum()
  _, fooled, _ = attack(model, x, y, eps=eps, norm="inf", queries=200)
  assert not np.any(robust & fooled)
  assert fooled.sum() >= 0.9 * (~robust).sum()


def test_same_seeds_same_examples_whatever_the_batching(small):
  model, x, y = small
  for norm, eps in (("inf", 0.1), ("2", 1.0)):
    adv, fooled, used = attack(model, x, y, seed=3, eps=eps, norm=norm, queries=30)
    again = attack(model, x, y, seed=3, eps=eps, norm=norm, queries=30)
    np.testing.assert_array_equal(adv, again[0])
    parts = [attack(model, x[k:k + 9], y[k:k + 9], seed=3, index=np.arange(k, min(k + 9, len(x))), eps=eps,
                    norm=norm, queries=30) for k in range(0, len(x), 9)]
    np.testing.assert_allclose(np.concatenate([p[0] for p in parts]), adv, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), fooled)
    np.testing.assert_array_equal(np.concatenate([p[2] for p in parts]), used)
    assert np.abs(attack(model, x, y, seed=4, eps=eps, norm=norm, queries=30)[0] - adv).max() > eps / 4
