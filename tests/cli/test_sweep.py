"""`python -m tfrobust.sweep` (cli/sweep.py) as a command line: bad input is one line on stderr, exit status 2,
nothing written — for each place a bad study is caught (the flags' parse, the grid before TensorFlow loads, the
steps budget against the training set, a directory holding another study). Every other bad grid value goes through
the same Grid.validate, tested in-process in tests/study/test_grid.py; the study itself: tests/study/."""

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, run_module
from tfrobust.errors import UsageError
from tfrobust.records import sweep as sweep_records

FAST = ["--dataset=digits", "--model=mlp", "--epochs=2", "--momenta=0.9", "--seeds=0"]


def _keys(sweep_dir):
  with open(os.path.join(sweep_dir, "results.jsonl")) as f:
    return sorted(json.loads(line)["trial_id"] for line in f)


@pytest.mark.parametrize("args, flag", [
    (["--seeds=0,0"], "--seeds"),  # Grid.validate, before TensorFlow loads
    (["--batch_sizes=16,x"], "--batch_sizes"),  # the list flag's numbers
    (["--budget=steps", "--batch_sizes=16,64", "--base_batch_size=64"], "--budget"),  # 45 updates < 89 a B=16 epoch
    (["--seeds=auto", "--max_seeds=2"], "--max_seeds"),  # below the first look
    (["--seeds=auto", "--looks=6,3"], "--looks"),  # not ascending
    (["--seeds=auto", "--max_seeds=201"], "--max_seeds"),  # a cap above 200
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


AUTO = ["--dataset=digits", "--model=mlp", "--epochs=1", "--regimes=fixed_lr,constant_ratio", "--batch_sizes=16,64",
        "--momenta=0,0.9", "--seeds=auto", "--looks=3", "--max_seeds=4", "--attacks=fgsm", "--eps=0.1",
        "--report_eps=0.1", "--hessian_top_k=1", "--hessian_max_iter=5"]


def test_an_auto_study_killed_between_looks_resumes_the_same_plan(tmp_path):
  """--seeds=auto: the first look's 3 seeds over the whole grid, the verdicts, then the next look. Killed (SIGKILL)
  as soon as the first look is judged, the same command continues with the second look: every point once."""
  sweep = str(tmp_path / "s")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
  proc = subprocess.Popen([sys.executable, "-m", "tfrobust.sweep", *AUTO, f"--sweep_dir={sweep}"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  seen = []
  for line in proc.stdout:
    seen.append(line)
    if line.startswith("look 1 "):
      proc.send_signal(signal.SIGKILL)
      break
  proc.wait(timeout=60)
  first = next((line for line in seen if line.startswith("look 1 (3 seeds)")), None)
  assert first is not None, seen[-5:]
  more = "next look: 4 seeds" in first  # on this CPU kind's networks (on another, look 1 may decide it all)
  with open(os.path.join(sweep, "sweep.json")) as f:
    plan = json.load(f)
  assert plan["seeds"] == "auto" and plan["sequential"]["looks"] == [3, 4]
  assert len(_keys(sweep)) == 24
  again = run_module("tfrobust.sweep", *AUTO, f"--sweep_dir={sweep}", timeout=300)
  assert again.returncode == 0, again.stderr[-3000:]
  keys = _keys(sweep)
  assert len(keys) == len(set(keys)) == (32 if more else 24)  # look 2's seed in all 8 cells, nothing twice
  assert "look 1 (3 seeds)" in again.stdout and ("look 2 (4 seeds)" in again.stdout) == more
  other_plan = dict(plan, sequential=dict(plan["sequential"], max_seeds=5, looks=[3, 5]))
  with pytest.raises(UsageError, match="different study"):  # another plan in this directory: refused
    sweep_records.claim_sweep_dir(sweep, other_plan)
