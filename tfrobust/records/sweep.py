"""A sweep directory's records: sweep.json (the study it is) and results.jsonl (one line per finished point).

One rule for every reader: a line that is not JSON (a torn last line from a crash) is skipped and counted; of
several lines with one trial id the **first** stands (the study appends under a lock and never a second line for
a recorded point, so a later one can only come from a copy or a race, and the first is what the study reported).
"""

import contextlib
import dataclasses
import fcntl
import json
import os
from typing import Dict, List

from tfrobust import io
from tfrobust.errors import UsageError
from tfrobust.records import names, upgrade
from tfrobust.records.trial import Trial, parse_trial


@dataclasses.dataclass(frozen=True)
class ResultLines:
  """results.jsonl read by the one rule: the standing line of each trial id, in file order."""
  by_id: Dict[str, dict]
  unreadable: int = 0  # lines that are not JSON objects
  duplicates: int = 0  # lines whose trial id an earlier line already holds (left out)


def results_path(sweep_dir):
  return os.path.join(sweep_dir, names.RESULTS_FILE)


def read_lines(sweep_dir) -> ResultLines:
  """results.jsonl by the one rule (an absent file is an empty sweep)."""
  path = results_path(sweep_dir)
  by_id, unreadable, duplicates = {}, 0, 0
  if not os.path.exists(path):
    return ResultLines(by_id)
  with open(path, encoding="utf-8") as f:
    for line in f:
      if not line.strip():
        continue
      try:
        obj = json.loads(line)
      except json.JSONDecodeError:
        unreadable += 1
        continue
      if not isinstance(obj, dict):
        unreadable += 1
        continue
      trial_id = obj.get("trial_id")
      duplicates += trial_id in by_id
      by_id.setdefault(trial_id, obj)
  return ResultLines(by_id, unreadable, duplicates)


def load_trials(sweep_dir):
  """(trials, notes) for the report: every standing line parsed; UsageError when there is nothing to report."""
  if not os.path.isdir(sweep_dir):
    raise UsageError(f"--sweep_dir={sweep_dir}: not a directory")
  if not os.path.isfile(results_path(sweep_dir)):
    raise UsageError(f"--sweep_dir={sweep_dir}: no results ({names.RESULTS_FILE} is missing)")
  lines = read_lines(sweep_dir)
  trials: List[Trial] = []
  malformed = lines.unreadable
  for lineno, obj in enumerate(lines.by_id.values(), 1):
    try:
      trials.append(parse_trial(obj, lineno))
    except (ValueError, TypeError, KeyError, AttributeError):
      malformed += 1
  notes = []
  if malformed:
    notes.append(f"{malformed} malformed line(s) of {names.RESULTS_FILE} were skipped.")
  if lines.duplicates:
    notes.append(f"{lines.duplicates} line(s) repeated an earlier trial id; the first line of each id was used.")
  if not trials:
    raise UsageError(f"--sweep_dir={sweep_dir}: no results ({names.RESULTS_FILE} holds no trial record"
                     + (f"; {malformed} malformed line(s))" if malformed else ")"))
  return trials, notes


@contextlib.contextmanager
def _locked(sweep_dir):
  """An exclusive lock on the sweep directory: workers sharing a file system append one at a time."""
  with open(os.path.join(sweep_dir, names.LOCK_FILE), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def append_result(sweep_dir, line):
  """Appends `line` unless its trial id is already recorded; returns the line that stands in the file."""
  with _locked(sweep_dir):
    existing = read_lines(sweep_dir).by_id.get(line["trial_id"])
    if existing is not None:
      return existing
    io.append_jsonl(results_path(sweep_dir), line)
    return io.clean(line)


def read_sweep(sweep_dir):
  """sweep.json upgraded to the current keys; None when absent; ValueError when it is not a JSON object."""
  path = os.path.join(sweep_dir, names.SWEEP_FILE)
  if not os.path.isfile(path):
    return None
  with open(path, encoding="utf-8") as f:
    description = json.load(f)
  if not isinstance(description, dict):
    raise ValueError(f"{path}: not a JSON object")
  return upgrade.sweep(description)


def read_looks(sweep_dir):
  """LOOKS_FILE: {look number (a string): {"seeds", "next"}} of a --seeds=auto study; {} when absent."""
  path = os.path.join(sweep_dir, names.LOOKS_FILE)
  return io.read_json(path) if os.path.isfile(path) else {}


def record_look(sweep_dir, look, seeds, next_seeds):
  """Records look `look`'s decision: judged at `seeds` seeds, go on to `next_seeds` (None: stop)."""
  looks = dict(read_looks(sweep_dir), **{str(look): {"seeds": seeds, "next": next_seeds}})
  io.write_json(os.path.join(sweep_dir, names.LOOKS_FILE), looks)


def claim_sweep_dir(sweep_dir, description):
  """Makes `sweep_dir` this study's: refuses (UsageError) a directory whose sweep.json describes another study,
  else writes sweep.json. report_eps may change between runs of one study (it only chooses what is reported)."""
  description = io.clean(description)
  previous = read_sweep(sweep_dir)
  if previous is not None:
    fixed = {k: v for k, v in previous.items() if k != "report_eps"}
    if fixed != {k: v for k, v in description.items() if k != "report_eps"}:
      diff = sorted(k for k in set(previous) | set(description)
                    if k != "report_eps" and previous.get(k) != description.get(k))
      raise UsageError(f"--sweep_dir={sweep_dir}: holds a different study ({', '.join(diff)} differ); "
                       "choose another directory")
  os.makedirs(sweep_dir, exist_ok=True)
  io.write_json(os.path.join(sweep_dir, names.SWEEP_FILE), description)
