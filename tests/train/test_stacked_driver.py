"""The stack's driver against `driver.fit` run for each network alone (float64, see test_stacked.py): the same
history, loss-budget stop, divergence record and final weights per network; a crash mid-stack resumes to the same
weights and histories as a run never interrupted."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tfrobust import config, data, models
from tfrobust.train import driver, stacked_driver
from tfrobust.train.stacked import StackedTrainer
from tfrobust.train.step import Trainer

BASE = config.TrainConfig(dataset="digits", model="mlp", batch_size=64, epochs=4, steps_per_call=8,
                          eval_batch_size=500, base_batch_size=64)
# Under a loss budget of 0.3 nats (cap 4 epochs): network 0 reaches it first, network 1 later, network 2 never.
NETWORKS = [dict(seed=0, lr=0.3, momentum=0.9), dict(seed=1, lr=0.1, momentum=0.5, nesterov=True),
            dict(seed=2, lr=0.01, momentum=0.0, weight_decay=1e-3)]


def _configs(**changes):
  return [dataclasses.replace(BASE, **n, **changes) for n in NETWORKS]


def _initial(ds):
  return [models.build_model("mlp", ds.input_shape, 10, seed=n["seed"]).get_weights() for n in NETWORKS]


def _stack(ds, initial):
  trainer = StackedTrainer(lambda: models.build_model("mlp", ds.input_shape, 10, stack=len(initial)),
                           tf.distribute.get_strategy(), stack=len(initial), global_batch_size=BASE.batch_size,
                           steps_per_call=BASE.steps_per_call)
  trainer.reset(initial)
  return trainer


def test_each_network_of_a_stack_gets_its_lone_fit_under_the_loss_budget(tmp_path, digits, float64):
  configs = _configs(target_train_loss=0.3)
  initial = _initial(digits)
  trainer = _stack(digits, initial)
  results = stacked_driver.fit_stack(trainer, digits, configs, checkpoint_dir=str(tmp_path / "stack"))
  lone = Trainer(lambda: models.build_model("mlp", digits.input_shape, 10), tf.distribute.get_strategy(),
                 global_batch_size=BASE.batch_size, steps_per_call=BASE.steps_per_call)
  epochs = []
  for k, (cfg, result) in enumerate(zip(configs, results)):
    lone.reset(initial[k])
    alone = driver.fit(lone, digits, cfg, checkpoint_dir=str(tmp_path / f"alone{k}"), progress=False)
    epochs.append(len(alone.history))
    assert (result.reached_target, result.steps, result.diverged) == (alone.reached_target, alone.steps, False)
    assert len(result.history) == len(alone.history), k
    for mine, theirs in zip(result.history, alone.history):
      for key in ("epoch", "steps", "epoch_steps", "train/learning_rate"):
        assert mine[key] == theirs[key], (k, key)
      for key in ("train/loss", "train/accuracy", "train/grad_norm", "test/loss", "test/accuracy",
                  driver.WHOLE_SET_LOSS, driver.WHOLE_SET_ACCURACY):
        assert mine[key] == pytest.approx(theirs[key], rel=1e-9, abs=1e-12), (k, key)
    for a, b in zip(trainer.network_weights(k), lone.model.get_weights()):
      np.testing.assert_allclose(a, b, atol=1e-9)
  assert epochs[0] < epochs[1] < epochs[2] == BASE.epochs, epochs  # three different stops: the test means something
  assert [r.reached_target for r in results] == [True, True, False]


def test_a_diverged_network_is_recorded_and_the_others_finish(tmp_path, digits):
  """Network 1's learning rate of 1e30 sends its weights to ~1e28 at step 0 and its float32 logits to inf a step or
  two later (not at the call's first step): recorded as diverged at that step, having made that many updates;
  the others train the epoch."""
  configs = _configs(epochs=1)
  configs[1] = dataclasses.replace(configs[1], lr=1e30, momentum=0.0)
  results = stacked_driver.fit_stack(_stack(digits, _initial(digits)), digits, configs, checkpoint_dir=str(tmp_path))
  assert [r.diverged for r in results] == [False, True, False]
  assert results[1].divergence["step"] == results[1].steps >= 1 and results[1].history == []
  assert results[1].divergence["lr"] == pytest.approx(1e30) and "weight_norm" in results[1].divergence
  assert [results[0].steps, results[2].steps] == [22, 22] and len(results[0].history) == len(results[2].history) == 1


class _Crash(Exception):
  pass


@pytest.mark.parametrize("kill", ["mid_call", "between_state_and_checkpoint"])
def test_a_stack_killed_mid_run_resumes_to_the_same_networks(tmp_path, digits, monkeypatch, kill):
  """Killed in a compiled call (steps 32-40, mid second epoch: the last checkpoint is at 32), or between the state
  file and the checkpoint at the second epoch's end (44: the state file holds entries newer than checkpoint 40):
  the rerun resumes from the checkpoint and ends with the weights and histories of a run never killed."""
  configs = _configs(epochs=3, checkpoint_every_steps=8, target_train_loss=0.3)
  ref_trainer = _stack(digits, _initial(digits))
  ref = stacked_driver.fit_stack(ref_trainer, digits, configs, checkpoint_dir=str(tmp_path / "ref"))

  trainer = _stack(digits, _initial(digits))
  calls = {"n": 0}
  if kill == "mid_call":
    target, method, crash_at, resumes_at = trainer, "run_steps", 6, 32
  else:
    target, method, crash_at, resumes_at = tf.train.CheckpointManager, "save", 7, 40
  original = getattr(target, method)

  def crash(*args, **kwargs):
    calls["n"] += 1
    if calls["n"] == crash_at:
      raise _Crash()
    return original(*args, **kwargs)
  monkeypatch.setattr(target, method, crash)
  with pytest.raises(_Crash):
    stacked_driver.fit_stack(trainer, digits, configs, checkpoint_dir=str(tmp_path / "run"))
  monkeypatch.undo()
  resumed_trainer = _stack(digits, [[np.zeros_like(w) for w in ws] for ws in _initial(digits)])
  resumed = stacked_driver.fit_stack(resumed_trainer, digits, configs, checkpoint_dir=str(tmp_path / "run"))
  assert resumed[0].resumed_from_step == resumes_at
  for k in range(len(NETWORKS)):
    timing = ("epoch_s", "train/images_per_s")
    assert ([{key: v for key, v in h.items() if key not in timing} for h in resumed[k].history]
            == [{key: v for key, v in h.items() if key not in timing} for h in ref[k].history]), k
    assert (resumed[k].steps, resumed[k].reached_target) == (ref[k].steps, ref[k].reached_target)
    assert all(np.array_equal(a, b) for a, b in zip(resumed_trainer.network_weights(k), ref_trainer.network_weights(k)))
