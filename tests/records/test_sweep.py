"""tfrobust.records.sweep: one reading rule for results.jsonl (first line per trial id, torn lines skipped), appends
under a lock that never write a point twice, and sweep.json's claim on a directory."""

import json
import os

import pytest

from tfrobust import io
from tfrobust.errors import UsageError
from tfrobust.records import names
from tfrobust.records import sweep as sweep_records


def line(trial_id, clean):
  return {"trial_id": trial_id, "regime": "fixed_lr", "status": "ok", "metrics": {"test_accuracy": clean},
          "hparams": {"batch_size": 16, "momentum": 0.9, "seed": 0, "lr": 0.05, "epochs": 3}}


def write_lines(d, texts):
  with open(os.path.join(d, names.RESULTS_FILE), "w") as f:
    f.write("".join(t + "\n" for t in texts))


def test_the_first_line_of_an_id_stands_and_torn_lines_are_counted(tmp_path):
  d = str(tmp_path)
  a1, b, a2 = line("a", 0.5), line("b", 0.6), line("a", 0.9)
  write_lines(d, [json.dumps(a1), json.dumps(b), json.dumps(a2), '{"trial_id": "c", "metr'])
  got = sweep_records.read_lines(d)
  assert got.by_id["a"]["metrics"]["test_accuracy"] == 0.5 and list(got.by_id) == ["a", "b"]
  assert (got.unreadable, got.duplicates) == (1, 1)
  trials, notes = sweep_records.load_trials(d)
  assert [t.trial_id for t in trials] == ["a", "b"] and trials[0].clean == 0.5
  assert any("first line" in n for n in notes) and any("malformed" in n for n in notes)


def test_append_never_writes_a_recorded_point_twice(tmp_path):
  d = str(tmp_path)
  first = sweep_records.append_result(d, line("a", 0.5))
  again = sweep_records.append_result(d, line("a", 0.9))
  assert first == again and again["metrics"]["test_accuracy"] == 0.5
  assert len(open(os.path.join(d, names.RESULTS_FILE)).readlines()) == 1


def test_nothing_to_report_is_a_usage_error(tmp_path):
  with pytest.raises(UsageError, match="not a directory"):
    sweep_records.load_trials(str(tmp_path / "absent"))
  with pytest.raises(UsageError, match="results.jsonl is missing"):
    sweep_records.load_trials(str(tmp_path))
  write_lines(str(tmp_path), ["[1, 2]"])
  with pytest.raises(UsageError, match="no trial record; 1 malformed"):
    sweep_records.load_trials(str(tmp_path))


def test_a_directory_of_another_study_is_refused_and_an_old_sweep_json_is_upgraded(tmp_path):
  d = str(tmp_path)
  description = {"regimes": ["fixed_lr"], "budget": "epochs", "base": {"augment": "none", "lr": 0.05},
                 "report_eps": 0.1}
  io.write_json(os.path.join(d, names.SWEEP_FILE), {"regimes": ["fixed_lr"], "base": {"lr": 0.05}})
  sweep_records.claim_sweep_dir(d, description)  # written before budget and augment existed: the same study
  sweep_records.claim_sweep_dir(d, dict(description, report_eps=0.2))  # report_eps only chooses what is shown
  with pytest.raises(UsageError, match=r"holds a different study \(budget differ"):
    sweep_records.claim_sweep_dir(d, dict(description, budget="steps"))
  assert sweep_records.read_sweep(d)["report_eps"] == 0.2


def test_an_unreadable_sweep_json_is_a_value_error(tmp_path):
  with open(os.path.join(tmp_path, names.SWEEP_FILE), "w") as f:
    f.write("[]")
  with pytest.raises(ValueError, match="not a JSON object"):
    sweep_records.read_sweep(str(tmp_path))
  assert sweep_records.read_sweep(str(tmp_path / "none")) is None
