"""Nothing is lost on a crash: kill -9 mid-epoch and rerun gives bitwise the same weights; bad checkpoints."""

import glob
import os
import signal
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_module, start_module

ARGS = ["--dataset=digits", "--model=lenet", "--batch_size=32", "--epochs=4", "--deterministic",
        "--checkpoint_every_steps=7", "--steps_per_call=1"]


def _final_weights(output_dir):
  path = tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints"))
  reader = tf.train.load_checkpoint(path)
  names = sorted(n for n in reader.get_variable_to_shape_map() if n.startswith("weights/"))
  assert names
  return path, {n: reader.get_tensor(n) for n in names}


def _checkpoint_steps(output_dir):
  return sorted(int(p.rsplit("-", 1)[1].split(".")[0])
                for p in glob.glob(os.path.join(output_dir, "checkpoints", "ckpt-*.index")))


def test_kill_9_mid_epoch_then_rerun_is_bitwise_identical(tmp_path):
  ref = str(tmp_path / "ref")
  proc = run_module("tfrobust.main", *ARGS, f"--output_dir={ref}")
  assert proc.returncode == 0, proc.stderr[-2000:]

  out = str(tmp_path / "killed")
  victim = start_module("tfrobust.main", *ARGS, f"--output_dir={out}", quiet=True)
  steps_per_epoch = 1437 // 32
  deadline = time.time() + 120
  while time.time() < deadline:  # wait for a mid-epoch checkpoint in the second epoch
    steps = _checkpoint_steps(out) if os.path.isdir(os.path.join(out, "checkpoints")) else []
    if any(s > steps_per_epoch and s % steps_per_epoch for s in steps):
      break
    time.sleep(0.05)
  victim.send_signal(signal.SIGKILL)
  victim.wait()
  assert not os.path.exists(os.path.join(out, "result.json")), "the run finished before it was killed"
  killed_at = max(_checkpoint_steps(out))
  assert killed_at < 4 * steps_per_epoch

  proc = run_module("tfrobust.main", *ARGS, f"--output_dir={out}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  import json
  result = json.load(open(os.path.join(out, "result.json")))
  assert result["resumed_from_step"] >= killed_at > 0
  _, w_ref = _final_weights(ref)
  _, w_out = _final_weights(out)
  assert w_ref.keys() == w_out.keys()
  for name in w_ref:
    assert np.array_equal(w_ref[name], w_out[name]), name
  assert result["metrics"] == json.load(open(os.path.join(ref, "result.json")))["metrics"]


def _train_two_epochs(output_dir):
  from tfrobust import config, data, models
  from tfrobust.train import driver
  from tfrobust.train.step import Trainer
  ds = data.load_digits()
  cfg = config.TrainConfig(model="mlp", batch_size=256, epochs=2)
  trainer = Trainer(lambda: models.build_model("mlp", ds.input_shape, 10, seed=0), tf.distribute.get_strategy(),
                    global_batch_size=256, steps_per_call=4)
  driver.fit(trainer, ds, cfg, checkpoint_dir=output_dir, progress=False)
  return trainer


def test_truncated_latest_checkpoint_falls_back_to_previous(tmp_path):
  from tfrobust.train import driver
  ckdir = str(tmp_path / "ck")
  trainer = _train_two_epochs(ckdir)
  manager_paths = tf.train.get_checkpoint_state(ckdir).all_model_checkpoint_paths
  assert len(manager_paths) == 2
  for data_file in glob.glob(manager_paths[-1] + ".data-*"):
    with open(data_file, "r+b") as f:
      f.truncate(16)
  ckpt, step, _ = driver.make_checkpoint(trainer)
  manager = tf.train.CheckpointManager(ckpt, ckdir, max_to_keep=driver.CHECKPOINTS_KEPT)
  assert driver.restore_latest(ckpt, manager) == manager_paths[0]
  assert int(step.numpy()) == 5  # the end of epoch 1 (1437 // 256 = 5 steps)


def test_all_checkpoints_corrupt_is_a_clear_error(tmp_path):
  from tfrobust.train import driver
  ckdir = str(tmp_path / "ck")
  trainer = _train_two_epochs(ckdir)
  for data_file in glob.glob(os.path.join(ckdir, "*.data-*")):
    with open(data_file, "r+b") as f:
      f.truncate(16)
  ckpt, _, _ = driver.make_checkpoint(trainer)
  manager = tf.train.CheckpointManager(ckpt, ckdir, max_to_keep=driver.CHECKPOINTS_KEPT)
  with pytest.raises(driver.CheckpointCorrupt, match="no readable checkpoint"):
    driver.restore_latest(ckpt, manager)


class _Killed(Exception):
  """Stands in for kill -9 in the middle of a compiled call."""


def _die_at_call(trainer, kill_at_call):
  """Makes the trainer's `kill_at_call`-th compiled call raise _Killed, as a kill between two calls would stop it."""
  calls, run_steps = [], trainer.run_steps

  def dying(*args, **kwargs):
    calls.append(1)
    if len(calls) == kill_at_call:
      raise _Killed()
    return run_steps(*args, **kwargs)
  trainer.run_steps = dying


def _fit_steps_budget(ckdir, *, kill_at_call=None):
  """MLP on digits with a steps budget: 12 updates at 5 steps an epoch (B = 256), so the third epoch is partial
  (2 steps); a checkpoint after every step, one step per call; optionally killed when call `kill_at_call` starts."""
  from tfrobust import config, data, models
  from tfrobust.train import driver
  from tfrobust.train.step import Trainer
  ds = data.load_digits()
  cfg = config.TrainConfig(model="mlp", batch_size=256, epochs=3, max_steps=12, lr_schedule="cosine",
                           steps_per_call=1, checkpoint_every_steps=1).validate()
  cfg.validate_against(len(ds.x_train))
  trainer = Trainer(lambda: models.build_model("mlp", ds.input_shape, 10, seed=0), tf.distribute.get_strategy(),
                    global_batch_size=256, steps_per_call=1)
  if kill_at_call is not None:
    _die_at_call(trainer, kill_at_call)
  return driver.fit(trainer, ds, cfg, checkpoint_dir=ckdir, progress=False), trainer


def test_steps_budget_stops_mid_epoch_and_resumes_exactly(tmp_path):
  ref, ref_trainer = _fit_steps_budget(str(tmp_path / "ref"))
  assert ref.steps == 12 and [h["steps"] for h in ref.history] == [5, 10, 12]
  assert [h["epoch_steps"] for h in ref.history] == [5, 5, 2]
  assert tf.train.latest_checkpoint(str(tmp_path / "ref")).endswith("ckpt-12")  # the partial epoch is saved too

  killed = str(tmp_path / "killed")
  with pytest.raises(_Killed):
    _fit_steps_budget(killed, kill_at_call=12)  # inside the partial third epoch, after the step-11 checkpoint
  assert tf.train.latest_checkpoint(killed).endswith("ckpt-11")
  resumed, trainer = _fit_steps_budget(killed)
  assert resumed.resumed_from_step == 11 and resumed.steps == 12
  for a, b in zip(ref_trainer.model.get_weights(), trainer.model.get_weights()):
    assert np.array_equal(a, b)
  timing = ("epoch_s", "train/images_per_s")
  assert [{k: v for k, v in h.items() if k not in timing} for h in resumed.history] == \
      [{k: v for k, v in h.items() if k not in timing} for h in ref.history]  # the epochs before the kill kept


def test_a_run_resumed_at_its_end_builds_no_training_input(tmp_path, monkeypatch):
  """A network whose training is over (a stack's, handed to its trial at its last step) goes straight to evaluation:
  no training stream is built (a tenth of a second each under a MirroredStrategy), and its history is kept."""
  from tfrobust import data
  done, _ = _fit_steps_budget(str(tmp_path / "steps"))
  reached, _, _ = _fit_to_target(str(tmp_path / "loss"), 100.0)  # a loss budget met at the first epoch's end

  def refuse(*args, **kwargs):
    raise AssertionError("a training stream was built for a finished run")
  monkeypatch.setattr(data, "training_stream", refuse)
  again, _ = _fit_steps_budget(str(tmp_path / "steps"))
  assert again.resumed_from_step == again.steps == 12 and again.history == done.history
  again, _, _ = _fit_to_target(str(tmp_path / "loss"), 100.0)  # stopped before its last step: over all the same
  assert again.resumed_from_step == again.steps == reached.steps == 1437 // 64 and again.reached_target


def _fit_to_target(ckdir, target, *, epochs=4, kill_at_call=None):
  """MLP on digits at B = 64 (22 steps an epoch) under a loss target (nats) capped at `epochs`; a checkpoint after
  every step, one step per call; optionally killed when call `kill_at_call` starts."""
  from tfrobust import config, data, models
  from tfrobust.train import driver
  from tfrobust.train.step import Trainer
  ds = data.load_digits()
  cfg = config.TrainConfig(model="mlp", batch_size=64, epochs=epochs, target_train_loss=target, steps_per_call=1,
                           checkpoint_every_steps=1, epoch_test_eval=False).validate()
  trainer = Trainer(lambda: models.build_model("mlp", ds.input_shape, 10, seed=0), tf.distribute.get_strategy(),
                    global_batch_size=64, steps_per_call=1)
  if kill_at_call is not None:
    _die_at_call(trainer, kill_at_call)
  return driver.fit(trainer, ds, cfg, checkpoint_dir=ckdir, progress=False), trainer, ds


def test_loss_target_never_reached_stops_at_the_cap_and_is_marked(tmp_path):
  from tfrobust.train import driver
  fit, trainer, ds = _fit_to_target(str(tmp_path / "cap"), 1e-6, epochs=3)
  assert fit.reached_target is False and fit.steps == 3 * (1437 // 64) and len(fit.history) == 3
  losses = [h[driver.WHOLE_SET_LOSS] for h in fit.history]
  assert all(loss > 1e-6 for loss in losses)
  # The measure is the whole training set's loss at the epoch's end: what the run records as metrics.train_loss.
  assert losses[-1] == trainer.loss_and_accuracy(ds.x_train, ds.y_train, 1000)[0]


def test_loss_target_stops_at_the_first_epoch_at_or_below_it_and_resumes_exactly(tmp_path):
  from tfrobust.train import driver
  probe, _, _ = _fit_to_target(str(tmp_path / "probe"), 1e-6, epochs=4)
  losses = [h[driver.WHOLE_SET_LOSS] for h in probe.history]
  assert losses[0] > losses[1] > losses[2]
  target = (losses[1] + losses[2]) / 2  # first reached at the end of epoch 3
  ref, ref_trainer, _ = _fit_to_target(str(tmp_path / "ref"), target, epochs=4)
  spe = 1437 // 64
  assert ref.reached_target is True and ref.steps == 3 * spe and [h["epoch"] for h in ref.history] == [1, 2, 3]
  assert tf.train.latest_checkpoint(str(tmp_path / "ref")).endswith(f"ckpt-{3 * spe}")  # saved where it stopped

  again, _, _ = _fit_to_target(str(tmp_path / "ref"), target, epochs=4)  # killed after its final checkpoint
  assert again.reached_target is True and again.steps == 3 * spe and again.resumed_from_step == 3 * spe

  killed = str(tmp_path / "killed")
  with pytest.raises(_Killed):
    _fit_to_target(killed, target, epochs=4, kill_at_call=2 * spe + 5)  # inside epoch 3
  resumed, trainer, _ = _fit_to_target(killed, target, epochs=4)
  assert resumed.resumed_from_step == 2 * spe + 4 and resumed.reached_target is True and resumed.steps == 3 * spe
  for a, b in zip(ref_trainer.model.get_weights(), trainer.model.get_weights()):
    assert np.array_equal(a, b)
  assert [h[driver.WHOLE_SET_LOSS] for h in resumed.history] == [h[driver.WHOLE_SET_LOSS] for h in ref.history]


def test_target_reached_reads_the_epoch_that_ended_at_the_step():
  from tfrobust.train import driver
  entry = {"steps": 10, driver.WHOLE_SET_LOSS: 0.05}
  assert driver.target_reached([entry], 10, 0.05)  # at the target counts
  assert not driver.target_reached([entry], 10, 0.0499)
  assert not driver.target_reached([entry], 12, 0.05)  # a later step: that epoch's measure is not this one's
  assert not driver.target_reached([entry], 10, 0.0)  # no target
