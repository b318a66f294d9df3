"""`python -m tfrobust.sweep` (cli/sweep.py) as a command line: bad input is one line on stderr, exit status 2,
nothing written — for each place a bad study is caught (the flags' parse, the grid before TensorFlow loads, the
steps budget against the training set, a directory holding another study). Every other bad grid value goes through
the same Grid.validate, tested in-process in tests/study/test_grid.py; the study itself: tests/study/."""

import json
import os

import pytest

from conftest import run_module

FAST = ["--dataset=digits", "--model=mlp", "--epochs=2", "--momenta=0.9", "--seeds=0"]


def _keys(sweep_dir):
  with open(os.path.join(sweep_dir, "results.jsonl")) as f:
    return sorted(json.loads(line)["trial_id"] for line in f)


@pytest.mark.parametrize("args, flag", [
    (["--seeds=0,0"], "--seeds"),  # Grid.validate, before TensorFlow loads
    (["--batch_sizes=16,x"], "--batch_sizes"),  # the list flag's numbers
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
