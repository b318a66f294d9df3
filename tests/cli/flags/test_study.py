"""The study's flags (cli/flags/study.py) and the Grid they make: the documented default grid, each list parsed
into its numbers (a bad one refused naming the flag), the budget and its loss settings passed through, and the
defaults a study sets for its trials (STUDY_DEFAULTS: checkpoints by wall time, no per-epoch test evaluation, no
SavedModel). The flags are defined on absl's global FLAGS, so they are parsed in one fresh interpreter."""

import json

import pytest

from conftest import run_script
from tfrobust.study.grid import Grid

PARSE = r"""
import dataclasses, json
from absl import flags
from tfrobust.cli import flags as experiment_flags
from tfrobust.cli.flags import study
from tfrobust.errors import UsageError
experiment_flags.define_flags()
study.define_flags()
out = {}
for name, args in CASES.items():
  if name == "study_defaults":
    study.set_study_defaults()
  flags.FLAGS.unparse_flags()
  flags.FLAGS(["prog", *args])
  try:
    grid = dataclasses.asdict(study.grid_from_flags())
    experiment = experiment_flags.experiment_from_flags(flags.FLAGS)
    out[name] = {"grid": grid, "checkpoint_every_s": experiment.train.checkpoint_every_s,
                 "epoch_test_eval": experiment.train.epoch_test_eval,
                 "export_saved_model": experiment.export_saved_model}
  except UsageError as e:
    out[name] = {"error": str(e)}
print(json.dumps(out))
"""

CASES = {
    "none": [],
    "given": ["--regimes=sqrt,fixed_lr", "--batch_sizes=8,24", "--momenta=0.5", "--seeds=4,2", "--budget=steps"],
    "loss": ["--budget=loss", "--target_train_loss=0.25", "--max_epochs=9"],
    "bad_batch": ["--batch_sizes=16,x"],
    "bad_seed": ["--seeds=1.5"],
    "study_defaults": [],  # last: set_study_defaults changes the defaults for good
}


@pytest.fixture(scope="module")
def parsed():
  proc = run_script(f"CASES = {CASES!r}\n{PARSE}", timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


def _grid(fields):
  return Grid(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def test_the_default_grid_is_the_documented_one(parsed):
  """docs/study.md's grid: two regimes × B ∈ {16, ..., 256} × μ ∈ {0, 0.9} × three seeds, the epochs budget."""
  assert _grid(parsed["none"]["grid"]) == Grid(("fixed_lr", "constant_ratio"), (16, 32, 64, 128, 256), (0.0, 0.9),
                                               (0, 1, 2), budget="epochs")


def test_each_list_is_parsed_into_its_numbers_in_the_order_given(parsed):
  assert _grid(parsed["given"]["grid"]) == Grid(("sqrt", "fixed_lr"), (8, 24), (0.5,), (4, 2), budget="steps")
  loss = _grid(parsed["loss"]["grid"])
  assert (loss.budget, loss.target_train_loss, loss.max_epochs) == ("loss", 0.25, 9)
  assert parsed["none"]["grid"]["target_train_loss"] is None  # no target: the other budgets take none


def test_a_bad_number_names_the_flag(parsed):
  assert parsed["bad_batch"] == {"error": "--batch_sizes=16,x: 'x' is not an integer"}
  assert parsed["bad_seed"] == {"error": "--seeds=1.5: '1.5' is not an integer"}


def test_a_study_sets_its_trials_defaults(parsed):
  assert {k: parsed["none"][k] for k in ("checkpoint_every_s", "epoch_test_eval", "export_saved_model")} == {
      "checkpoint_every_s": 0.0, "epoch_test_eval": True, "export_saved_model": True}  # a single run's
  assert {k: parsed["study_defaults"][k] for k in ("checkpoint_every_s", "epoch_test_eval", "export_saved_model")} == {
      "checkpoint_every_s": 60.0, "epoch_test_eval": False, "export_saved_model": False}
  assert _grid(parsed["study_defaults"]["grid"]) == _grid(parsed["none"]["grid"])  # the grid is the same
