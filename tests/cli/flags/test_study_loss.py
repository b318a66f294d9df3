"""The study's loss-budget flags end to end: `tfrobust.sweep --budget=loss --target_train_loss --max_epochs`
records the budget and target in sweep.json and each point's epochs and steps, refuses bad input with one line
and exit 2 before writing anything, and refuses a sweep directory of another budget."""

import json
import os

import pytest

from conftest import run_module

FAST = ["--dataset=digits", "--model=mlp", "--regimes=fixed_lr", "--momenta=0.9", "--seeds=0"]
LOSS = ["--budget=loss", "--target_train_loss=0.3", "--max_epochs=4"]


@pytest.mark.parametrize("args, flag", [
    (["--budget=loss", "--max_epochs=5"], "--target_train_loss"),
    (["--budget=loss", "--target_train_loss=0.05"], "--max_epochs"),
    (["--budget=loss", "--target_train_loss=-0.05", "--max_epochs=5"], "--target_train_loss"),
    (["--budget=loss", "--target_train_loss=nan", "--max_epochs=5"], "--target_train_loss"),
    (["--budget=loss", "--target_train_loss=0.05", "--max_epochs=0"], "--max_epochs"),
    (["--target_train_loss=0.05"], "--target_train_loss"),  # a target the epochs budget would ignore
])
def test_bad_loss_budget_one_line_exit_2_nothing_written(tmp_path, args, flag):
  sweep = tmp_path / "s"
  proc = run_module("tfrobust.sweep", *FAST, "--batch_sizes=32", *args, f"--sweep_dir={sweep}")
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.strip().count("\n") == 0 and flag in proc.stderr, proc.stderr
  assert not sweep.exists()


def test_a_run_with_a_negative_target_is_refused(tmp_path):
  out = tmp_path / "run"
  proc = run_module("tfrobust.main", "--target_train_loss=-1", f"--output_dir={out}")
  assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "--target_train_loss" in proc.stderr
  assert not out.exists()


def test_loss_budget_sweep_records_target_cap_and_use_and_refuses_another_budget(tmp_path):
  """B = 32 reaches 0.3 nats within the 4-epoch cap, B = 256 (5 updates an epoch at η = 0.05) does not."""
  sweep = str(tmp_path / "s")
  proc = run_module("tfrobust.sweep", *FAST, "--batch_sizes=32,256", *LOSS, f"--sweep_dir={sweep}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  description = json.load(open(os.path.join(sweep, "sweep.json")))
  assert (description["budget"], description["target_train_loss"], description["max_epochs"]) == ("loss", 0.3, 4)
  lines = {json.loads(line)["trial_id"]: json.loads(line) for line in open(os.path.join(sweep, "results.jsonl"))}
  small, large = lines["fixed_lr-b32-m0.9-s0"], lines["fixed_lr-b256-m0.9-s0"]
  for line in (small, large):
    assert line["hparams"]["budget"] == "loss" and line["hparams"]["target_train_loss"] == 0.3
    assert line["hparams"]["epochs"] == 4 and line["steps"] == len(line["history"]) * (1437 // line["hparams"]["batch_size"])
    assert line["history"][-1]["train/whole_set_loss"] == line["metrics"]["train/loss"]
  assert small["metrics"]["train/loss"] <= 0.3 and len(small["history"]) < 4
  assert all(h["train/whole_set_loss"] > 0.3 for h in small["history"][:-1])  # stopped at the first
  assert large["metrics"]["train/loss"] > 0.3 and len(large["history"]) == 4  # the cap, marked by its loss
  report = open(os.path.join(sweep, "report", "report.md")).read()
  assert "Budget: **loss**" in report

  other = run_module("tfrobust.sweep", *FAST, "--batch_sizes=32,256", f"--sweep_dir={sweep}")
  assert other.returncode == 2 and "different study" in other.stderr and "budget" in other.stderr
