"""The study runner (study/runner.py): each grid point trained once and recorded in results.jsonl with its
hyperparameters (what the regime and the budget say they must be: η·B/B₀, the same updates at every B), the
HParams dashboard's configuration, a rerun that repeats nothing, a diverging or failing trial recorded while the
study goes on. results.jsonl is read here line by line with json, not through tfrobust.records."""

import glob
import json
import math
import os

import pytest

from conftest import run_module, sweep_keys, sweep_lines

FAST = ["--dataset=digits", "--model=mlp", "--epochs=2", "--momenta=0.9", "--seeds=0"]



def test_every_point_once_hparams_registered_and_rerun_does_nothing(tmp_path):
  sweep = str(tmp_path / "s")
  args = [*FAST, "--regimes=fixed_lr,constant_ratio", "--batch_sizes=32,64", f"--sweep_dir={sweep}"]
  proc = run_module("tfrobust.sweep", *args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  want = sorted(f"{r}-b{b}-m0.9-s0" for r in ("fixed_lr", "constant_ratio") for b in (32, 64))
  assert sweep_keys(sweep) == want
  lines = {line["trial_id"]: line for line in sweep_lines(sweep)}
  assert lines["constant_ratio-b32-m0.9-s0"]["hparams"]["scaled_lr"] == pytest.approx(0.05 * 32 / 256)
  assert lines["fixed_lr-b32-m0.9-s0"]["hparams"]["scaled_lr"] == pytest.approx(0.05)
  assert all(line["status"] == "ok" and line["metrics"]["test/accuracy"] > 0.1 for line in lines.values())
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
  assert {m.name.tag for m in config.metric_infos} >= {"final/test/accuracy", "study/adv_accuracy"}

  again = run_module("tfrobust.sweep", *args)
  assert again.returncode == 0, again.stderr[-3000:]
  assert sweep_keys(sweep) == want  # nothing repeated
  assert "4 already done, 0 to run" in again.stdout


def _assert_training_loss_recorded(lines):
  """Every finished trial records its final training loss (whole training set, after training) and each
  epoch's running training loss."""
  for line in lines:
    assert math.isfinite(line["metrics"]["train/loss"]), line["trial_id"]
    assert line["history"] and all(math.isfinite(h["train/loss"]) for h in line["history"]), line["trial_id"]


def test_steps_budget_gives_every_batch_size_the_same_updates(tmp_path):
  """--budget=steps: S = round(2 epochs · 1437 / 64) = 45 updates at every B, so B = 128 (11 steps an epoch)
  trains 5 epochs, the last one a single step; a rerun with the epochs budget is refused."""
  sweep = str(tmp_path / "s")
  args = [*FAST, "--regimes=fixed_lr", "--batch_sizes=32,64,128", "--base_batch_size=64", "--budget=steps",
          f"--sweep_dir={sweep}"]
  proc = run_module("tfrobust.sweep", *args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = {line["trial_id"]: line for line in sweep_lines(sweep)}
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
  assert len(sweep_lines(sweep)) == 3


def test_diverging_trial_is_recorded_and_the_sweep_finishes(tmp_path):
  sweep = str(tmp_path / "s")
  proc = run_module("tfrobust.sweep", *FAST, "--regimes=fixed_lr", "--batch_sizes=32", "--lr=1e6",
                    f"--sweep_dir={sweep}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  (line,) = sweep_lines(sweep)
  assert line["diverged"] is True and line["status"] == "ok"
  assert "diverged" in open(os.path.join(sweep, "report", "report.md")).read().lower()


def test_a_point_whose_config_cannot_be_built_is_that_trials_failure(tmp_path):
  """A dataset or config error while building one point's TrainConfig is recorded in results.jsonl as that
  trial's failure (status "failed", its error, the point's hyperparameters), and the next point still runs."""
  import tensorflow as tf
  from tfrobust import config
  from tfrobust.study import grid as grid_lib
  from tfrobust.study import runner
  grid = grid_lib.Grid(("fixed_lr", "constant_ratio"), (32,), (0.9,), (0,))
  experiment = config.ExperimentConfig(train=config.TrainConfig(dataset="nosuchset", epochs=1))
  study = runner.Study(grid, experiment, str(tmp_path), strategy=tf.distribute.get_strategy(), progress=False)
  returned = [study.run_point(point) for point in grid.points()]
  lines = sweep_lines(tmp_path)
  assert [line["trial_id"] for line in lines] == ["fixed_lr-b32-m0.9-s0", "constant_ratio-b32-m0.9-s0"]
  assert [line["trial_id"] for line in returned] == [line["trial_id"] for line in lines]
  for line in lines:
    assert line["status"] == "failed" and "nosuchset" in line["error"].strip().splitlines()[-1], line
    assert line["hparams"]["dataset"] == "nosuchset" and line["hparams"]["batch_size"] == 32
    assert line["hparams"]["momentum"] == 0.9 and line["hparams"]["seed"] == 0
  assert study.missing() == []


def test_a_study_over_another_looks_seeds_shares_what_it_built_and_sees_what_is_recorded(tmp_path):
  """Study.with_seeds (a worker handed the next look's point, study/tuner.py): the same strategy, data and
  compiled functions, the new seeds, and the points recorded so far."""
  import tensorflow as tf
  from tfrobust import config
  from tfrobust.study import grid as grid_lib
  from tfrobust.study import runner
  grid = grid_lib.Grid(("fixed_lr",), (32,), (0.9,), (0,))
  experiment = config.ExperimentConfig(train=config.TrainConfig(dataset="nosuchset", epochs=1))
  study = runner.Study(grid, experiment, str(tmp_path), strategy=tf.distribute.get_strategy(), progress=False)
  study.run_point(grid.points()[0])  # recorded as failed: no such dataset
  later = study.with_seeds((0, 1))
  assert tuple(later.grid.seeds) == (0, 1) and later.strategy is study.strategy and later.cache is study.cache
  assert list(later.done) == ["fixed_lr-b32-m0.9-s0"] and [p.key for p in later.missing()] == ["fixed_lr-b32-m0.9-s1"]
