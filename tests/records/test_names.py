"""The names of a sweep directory (records/names.py): a trial's run directory is trials/<trial id> under the
sweep directory, as the study's layout states (study/runner.py's docstring, docs/study.md)."""

import os

from tfrobust.records import names


def test_trial_dir_is_under_the_sweeps_trials_folder():
  assert names.trial_dir("runs/s", "fixed_lr-b32-m0.9-s0") == os.path.join("runs", "s", "trials",
                                                                         "fixed_lr-b32-m0.9-s0")
  assert names.trial_dir("/abs/s", "x") == "/abs/s/trials/x"
  assert os.path.dirname(names.trial_dir("s", "k")) == os.path.join("s", names.TRIALS_DIR)
