"""The SGD rule and the schedule against hand-written formulas, and the compiled Trainer against the rule."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfrobust import config as config_lib
from tfrobust.train import sgd
from tfrobust.train.step import Trainer


def test_update_rule_matches_torch_formula():
  w, v, g = np.array([1.0, -2.0]), np.array([0.5, 0.1]), np.array([0.2, 0.3])
  lr, mu, wd = 0.1, 0.9, 0.01
  d = g + wd * w
  v_ref = mu * v + d
  new_w, new_v = sgd.sgd_update(w, v, g, lr=lr, momentum=mu, weight_decay=wd, nesterov=0.0)
  np.testing.assert_allclose(new_v, v_ref)
  np.testing.assert_allclose(new_w, w - lr * v_ref)
  new_w, _ = sgd.sgd_update(w, v, g, lr=lr, momentum=mu, weight_decay=wd, nesterov=1.0)
  np.testing.assert_allclose(new_w, w - lr * (d + mu * v_ref))


def test_schedules():
  kw = dict(peak_lr=0.1, steps_per_epoch=10, epochs=20)
  assert sgd.learning_rate(57, **kw) == 0.1
  step = dict(kw, schedule="step", decay_epochs=(5, 10), decay_factor=0.1)
  assert sgd.learning_rate(49, **step) == pytest.approx(0.1)
  assert sgd.learning_rate(50, **step) == pytest.approx(0.01)
  assert sgd.learning_rate(100, **step) == pytest.approx(0.001)
  cos = dict(kw, schedule="cosine")
  assert sgd.learning_rate(0, **cos) == pytest.approx(0.1)
  assert sgd.learning_rate(100, **cos) == pytest.approx(0.05)
  warm = dict(kw, warmup_epochs=2)
  assert [sgd.learning_rate(s, **warm) for s in (0, 9, 19, 20)] == pytest.approx([0.005, 0.05, 0.1, 0.1])
  assert sgd.learning_rate(20, **dict(cos, warmup_epochs=2)) == pytest.approx(0.1)


@pytest.mark.parametrize("nesterov", [False, True])
def test_trainer_steps_equal_hand_computed_sgd(nesterov):
  """Three compiled steps on a linear softmax model equal the rule applied with numpy gradients."""
  import keras
  rng = np.random.default_rng(0)
  x = rng.random((12, 3), dtype=np.float32)
  y = rng.integers(0, 2, 12)
  lr, mu, wd, batch = 0.3, 0.9, 0.05, 4

  def model_fn():
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

  trainer = Trainer(model_fn, tf.distribute.get_strategy(), global_batch_size=batch, steps_per_call=3)
  W, b = [w.copy() for w in trainer.model.get_weights()]
  vW, vb = np.zeros_like(W), np.zeros_like(b)
  for i in range(3):
    xb, yb = x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]
    logits = xb @ W + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(batch), yb] -= 1  # d(mean CE)/d logits · batch
    gW, gb = xb.T @ p / batch, p.sum(0) / batch
    W, vW = sgd.sgd_update(W, vW, gW, lr=lr, momentum=mu, weight_decay=wd, nesterov=float(nesterov))
    b, vb = sgd.sgd_update(b, vb, gb, lr=lr, momentum=mu, weight_decay=wd, nesterov=float(nesterov))
  ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
  out = trainer.run_steps(iter(ds), np.full(3, lr, np.float32), 3, momentum=mu, weight_decay=wd,
                          nesterov=nesterov)
  got_W, got_b = trainer.model.get_weights()
  np.testing.assert_allclose(got_W, W, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got_b, b, rtol=1e-5, atol=1e-6)
  assert math.isfinite(out["loss_sum"]) and out["first_nonfinite"] == -1


def test_trainer_reports_first_nonfinite_step():
  import keras
  def model_fn():
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
  trainer = Trainer(model_fn, tf.distribute.get_strategy(), global_batch_size=2, steps_per_call=4)
  x = np.array([[1, 1], [1, 1], [np.nan, 1], [1, 1]] * 2, np.float32)
  ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(8, np.int64))).batch(2)
  out = trainer.run_steps(iter(ds), np.full(4, 0.1, np.float32), 4, momentum=0.0, weight_decay=0.0,
                          nesterov=False)
  assert out["first_nonfinite"] == 1


def test_no_retrace_across_hyperparameters():
  import keras
  def model_fn():
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
  trainer = Trainer(model_fn, tf.distribute.get_strategy(), global_batch_size=2, steps_per_call=2)
  ds = tf.data.Dataset.from_tensor_slices((np.ones((40, 2), np.float32), np.zeros(40, np.int64))).batch(2)
  it = iter(ds)
  for mu, wd, nest, n in [(0.0, 0.0, False, 2), (0.9, 0.1, True, 1), (0.5, 0.0, False, 2)]:
    trainer.run_steps(it, np.full(2, 0.1, np.float32), n, momentum=mu, weight_decay=wd, nesterov=nest)
  trainer.reset(model_fn().get_weights())
  trainer.run_steps(it, np.full(2, 0.1, np.float32), 2, momentum=0.9, weight_decay=0.0, nesterov=False)
  assert trainer.tracing_counts()["train_steps"] == 1


def test_cosine_spans_max_steps_and_max_steps_is_checked():
  cfg = config_lib.TrainConfig(lr=0.1, lr_schedule="cosine", epochs=3, max_steps=12, batch_size=256)
  assert sgd.schedule_from_config(cfg, 5)(6) == pytest.approx(0.05)  # half-way through 12 updates, not 15
  uncapped = config_lib.TrainConfig(lr=0.1, lr_schedule="cosine", epochs=3, batch_size=256)
  assert sgd.schedule_from_config(uncapped, 5)(6) == pytest.approx(0.05 * (1 + math.cos(math.pi * 6 / 15)))
  assert cfg.hparams()["max_steps"] == 12 and cfg.hparams()["budget"] == "steps"
  assert uncapped.hparams()["max_steps"] == 0 and uncapped.hparams()["budget"] == "epochs"
  cfg.validate_against(1437)  # 1437 // 256 = 5 steps an epoch: 12 updates take 3 epochs
  with pytest.raises(config_lib.UsageError, match="--max_steps=12: .* 3 epochs, not --epochs=4"):
    config_lib.TrainConfig(epochs=4, max_steps=12).validate_against(1437)
  with pytest.raises(config_lib.UsageError, match="--max_steps=-1"):
    config_lib.TrainConfig(max_steps=-1).validate()
