"""The study: each grid point exactly once, resume after kill -9, divergence, bad input, chief + two workers."""

import glob
import json
import math
import os
import signal
import socket
import time

import pytest

from conftest import run_module, start_module
from tfrobust.errors import UsageError

FAST = ["--dataset=digits", "--model=mlp", "--epochs=2", "--momenta=0.9", "--seeds=0"]


def _lines(sweep_dir):
  with open(os.path.join(sweep_dir, "results.jsonl")) as f:
    return [json.loads(line) for line in f]  # every line must parse


def _keys(sweep_dir):
  return sorted(line["trial_id"] for line in _lines(sweep_dir))


def test_every_point_once_hparams_registered_and_rerun_does_nothing(tmp_path):
  sweep = str(tmp_path / "s")
  args = [*FAST, "--regimes=fixed_lr,constant_ratio", "--batch_sizes=32,64", f"--sweep_dir={sweep}"]
  proc = run_module("tfrobust.sweep", *args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  want = sorted(f"{r}-b{b}-m0.9-s0" for r in ("fixed_lr", "constant_ratio") for b in (32, 64))
  assert _keys(sweep) == want
  lines = {line["trial_id"]: line for line in _lines(sweep)}
  assert lines["constant_ratio-b32-m0.9-s0"]["hparams"]["scaled_lr"] == pytest.approx(0.05 * 32 / 256)
  assert lines["fixed_lr-b32-m0.9-s0"]["hparams"]["scaled_lr"] == pytest.approx(0.05)
  assert all(line["status"] == "ok" and line["metrics"]["test_accuracy"] > 0.1 for line in lines.values())
  _assert_training_loss_recorded(lines.values())
  assert all(line["hparams"]["budget"] == "epochs" and line["hparams"]["max_steps"] == 0 for line in lines.values())
  assert lines["fixed_lr-b32-m0.9-s0"]["steps"] == 2 * (1437 // 32)  # every epoch, the last partial batch dropped
  assert json.load(open(os.path.join(sweep, "sweep.json")))["budget"] == "epochs"
  assert len(glob.glob(os.path.join(sweep, "tuner", "trial_*"))) == 4  # keras-tuner ran each point once
  assert os.path.exists(os.path.join(sweep, "report", "report.md"))
  # The HParams dashboard's configuration at the root names every swept hyperparameter and the metrics.
  import tensorflow as tf
  from tensorboard.plugins.hparams import plugin_data_pb2
  root_events = glob.glob(os.path.join(sweep, "events.out.tfevents.*"))
  config = None
  for event in tf.compat.v1.train.summary_iterator(root_events[0]):
    for value in event.summary.value:
      if value.metadata.plugin_data.plugin_name == "hparams":
        data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
        if data.HasField("experiment"):
          config = data.experiment
  names = {h.name for h in config.hparam_infos}
  assert {"regime", "batch_size", "momentum", "seed", "lr", "epochs", "model"} <= names
  assert {m.name.tag for m in config.metric_infos} >= {"final/test_accuracy", "study/adv_accuracy"}

  again = run_module("tfrobust.sweep", *args)
  assert again.returncode == 0, again.stderr[-3000:]
  assert _keys(sweep) == want  # nothing repeated
  assert "4 already done, 0 to run" in again.stdout


def _assert_training_loss_recorded(lines):
  """Every finished trial records its final training loss (whole training set, after training) and each
  epoch's running training loss."""
  for line in lines:
    assert math.isfinite(line["metrics"]["train_loss"]), line["trial_id"]
    assert line["history"] and all(math.isfinite(h["train/loss"]) for h in line["history"]), line["trial_id"]


def test_steps_budget_gives_every_batch_size_the_same_updates(tmp_path):
  """--budget=steps: S = round(2 epochs · 1437 / 64) = 45 updates at every B, so B = 128 (11 steps an epoch)
  trains 5 epochs, the last one a single step; a rerun with the epochs budget is refused."""
  sweep = str(tmp_path / "s")
  args = [*FAST, "--regimes=fixed_lr", "--batch_sizes=32,64,128", "--base_batch_size=64", "--budget=steps",
          f"--sweep_dir={sweep}"]
  proc = run_module("tfrobust.sweep", *args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = {line["trial_id"]: line for line in _lines(sweep)}
  assert len(lines) == 3
  for b, epochs in ((32, 2), (64, 3), (128, 5)):
    line = lines[f"fixed_lr-b{b}-m0.9-s0"]
    assert line["status"] == "ok" and line["steps"] == 45, (b, line.get("steps"))
    assert line["hparams"]["max_steps"] == 45 and line["hparams"]["budget"] == "steps"
    assert line["hparams"]["epochs"] == epochs == len(line["history"])
    assert line["history"][-1]["steps"] == 45 and line["history"][-1]["epoch_steps"] == 45 - (epochs - 1) * (1437 // b)
  _assert_training_loss_recorded(lines.values())
  description = json.load(open(os.path.join(sweep, "sweep.json")))
  assert description["budget"] == "steps" and description["epochs"] == 2
  other = run_module("tfrobust.sweep", *args[:-2], "--budget=epochs", f"--sweep_dir={sweep}")
  assert other.returncode == 2 and "different study" in other.stderr and "budget" in other.stderr, other.stderr
  assert len(_lines(sweep)) == 3


def test_steps_budget_configs_align_the_schedule_in_updates():
  """In-process: the point configs of the steps budget (no TensorFlow needed)."""
  from tfrobust import config
  from tfrobust.study import grid as grid_lib
  from tfrobust.train import sgd
  base = config.TrainConfig(lr=0.1, epochs=10, base_batch_size=64, lr_schedule="step", lr_decay_epochs=(5.0,),
                            warmup_epochs=2.0)
  grid = grid_lib.Grid(("fixed_lr",), (32, 64, 128), (0.9,), (0,), budget="steps")
  grid.validate(num_train_examples=1437, base=base)
  total = grid_lib.steps_budget(10, 1437, 64)
  assert total == 225  # round(224.53)
  for b in (32, 64, 128):
    cfg = grid.train_config(grid_lib.GridPoint("fixed_lr", b, 0.9, 0), base, 1437)
    spe = 1437 // b
    cfg.validate().validate_against(1437)
    assert cfg.max_steps == 225 and cfg.epochs == -(-225 // spe)
    lrs = [sgd.schedule_from_config(cfg, spe)(s) for s in range(225)]
    assert lrs.index(0.1) == 44 and lrs.index(pytest.approx(0.01)) == 113  # warm-up (45 steps), decay: same
  epochs_grid = grid_lib.Grid(("fixed_lr",), (32,), (0.9,), (0,))
  assert epochs_grid.train_config(grid_lib.GridPoint("fixed_lr", 32, 0.9, 0), base, 1437).max_steps == 0


def test_kill_9_mid_trial_then_rerun_has_every_point_once(tmp_path):
  sweep = str(tmp_path / "s")
  args = ["--dataset=digits", "--model=mlp", "--epochs=12", "--momenta=0.9", "--seeds=0", "--regimes=fixed_lr",
          "--batch_sizes=16,24,32", f"--sweep_dir={sweep}"]
  proc = start_module("tfrobust.sweep", *args, quiet=True)
  results = os.path.join(sweep, "results.jsonl")
  deadline = time.time() + 240
  while time.time() < deadline and not (os.path.exists(results) and os.path.getsize(results)):
    time.sleep(0.05)
  time.sleep(0.5)  # well into the second trial
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert len(_lines(sweep)) == 1, "the sweep must be killed during its second trial"
  rerun = run_module("tfrobust.sweep", *args)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert _keys(sweep) == sorted(f"fixed_lr-b{b}-m0.9-s0" for b in (16, 24, 32))


def test_diverging_trial_is_recorded_and_the_sweep_finishes(tmp_path):
  sweep = str(tmp_path / "s")
  proc = run_module("tfrobust.sweep", *FAST, "--regimes=fixed_lr", "--batch_sizes=32", "--lr=1e6",
                    f"--sweep_dir={sweep}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  (line,) = _lines(sweep)
  assert line["diverged"] is True and line["status"] == "ok"
  assert "diverged" in open(os.path.join(sweep, "report", "report.md")).read().lower()


@pytest.mark.parametrize("args, flag", [
    (["--batch_sizes="], "--batch_sizes"),
    (["--seeds=0,0"], "--seeds"),
    (["--regimes=fixed_lr,adaptive"], "--regimes"),
    (["--momenta=1.5"], "--momenta"),
    (["--batch_sizes=16,x"], "--batch_sizes"),
    (["--seeds=0,-1"], "--seeds"),
    (["--budget=foo"], "--budget"),
    (["--budget=steps", "--batch_sizes=16,64", "--base_batch_size=64"], "--budget"),  # 45 updates < 89 a B=16 epoch
])
def test_bad_grid_one_line_exit_2_nothing_written(tmp_path, args, flag):
  sweep = tmp_path / "s"
  proc = run_module("tfrobust.sweep", *FAST, "--batch_sizes=32", *args, f"--sweep_dir={sweep}")
  assert proc.returncode == 2
  assert proc.stderr.strip().count("\n") == 0 and flag in proc.stderr, proc.stderr
  assert not sweep.exists()


def test_directory_with_another_grid_is_refused_and_report_needs_results(tmp_path):
  sweep = str(tmp_path / "s")
  first = run_module("tfrobust.sweep", *FAST, "--regimes=fixed_lr", "--batch_sizes=64", f"--sweep_dir={sweep}")
  assert first.returncode == 0, first.stderr[-3000:]
  other = run_module("tfrobust.sweep", *FAST, "--regimes=fixed_lr", "--batch_sizes=32",
                     f"--sweep_dir={sweep}")
  assert other.returncode == 2 and "different study" in other.stderr and "batch_sizes" in other.stderr
  assert _keys(sweep) == ["fixed_lr-b64-m0.9-s0"]
  empty = run_module("tfrobust.report", f"--sweep_dir={tmp_path / 'nothing'}")
  assert empty.returncode == 2 and empty.stderr.startswith("error:")


def _keras_tuner_env(tuner_id, port):
  return {"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_chief_and_two_workers_run_every_point_once(tmp_path):
  sweep = str(tmp_path / "s")
  args = [*FAST, "--regimes=fixed_lr,constant_ratio", "--batch_sizes=32,64", f"--sweep_dir={sweep}"]
  port = _free_port()
  procs = []
  for tuner_id in ("chief", "tuner0", "tuner1"):
    procs.append(start_module("tfrobust.sweep", *args, env=_keras_tuner_env(tuner_id, port)))
    if tuner_id == "chief":
      time.sleep(3)  # let the chief open its port first
  try:
    outputs = [p.communicate(timeout=300) for p in procs]
  finally:
    for p in procs:
      p.kill()
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
  want = sorted(f"{r}-b{b}-m0.9-s0" for r in ("fixed_lr", "constant_ratio") for b in (32, 64))
  assert _keys(sweep) == want
  ran_by = {line["trial_id"]: line["tuner_trial_id"] for line in _lines(sweep)}
  assert len(set(ran_by.values())) == 4  # four distinct keras-tuner trials
  assert os.path.exists(os.path.join(sweep, "report", "report.md"))  # the chief wrote the report


def test_killed_worker_restarted_with_its_id_finishes_its_trial(tmp_path):
  """The documented recovery: the chief keeps a killed worker's trial 'running'; the same KERASTUNER_TUNER_ID
  started again gets that trial back and resumes it from its checkpoint."""
  sweep = str(tmp_path / "s")
  args = ["--dataset=digits", "--model=mlp", "--epochs=12", "--momenta=0.9", "--seeds=0", "--regimes=fixed_lr",
          "--batch_sizes=16,32", f"--sweep_dir={sweep}"]
  port = _free_port()

  def start(tuner_id):
    return start_module("tfrobust.sweep", *args, env=_keras_tuner_env(tuner_id, port))

  chief = start("chief")
  time.sleep(3)
  worker = start("tuner0")
  checkpoints = glob.glob(os.path.join(sweep, "trials", "*", "checkpoints", "checkpoint"))
  deadline = time.time() + 240
  while time.time() < deadline and not checkpoints:
    time.sleep(0.05)
    checkpoints = glob.glob(os.path.join(sweep, "trials", "*", "checkpoints", "checkpoint"))
  worker.send_signal(signal.SIGKILL)  # after its first epoch's checkpoint, long before its trial ends
  worker.wait()
  assert not os.path.exists(os.path.join(sweep, "results.jsonl"))
  restarted = start("tuner0")
  try:
    outputs = [p.communicate(timeout=300) for p in (restarted, chief)]
  finally:
    for p in (restarted, chief):
      p.kill()
  for p, (_, err) in zip((restarted, chief), outputs):
    assert p.returncode == 0, err[-3000:]
  lines = {line["trial_id"]: line for line in _lines(sweep)}
  assert sorted(lines) == ["fixed_lr-b16-m0.9-s0", "fixed_lr-b32-m0.9-s0"]
  assert lines["fixed_lr-b16-m0.9-s0"]["resumed_from_step"] > 0  # the killed trial resumed, not restarted
