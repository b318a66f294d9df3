"""The files of a sweep directory that hold its state beside keras-tuner's: sweep.json (the study it is)
and results.jsonl (one line per finished point, appended under a lock, never twice).

No TensorFlow: the report and the tests read these anywhere.
"""

import contextlib
import fcntl
import json
import os

from absl import logging

from tfrobust import config as config_lib
from tfrobust import io
from tfrobust.errors import UsageError

RESULTS_FILE = "results.jsonl"
SWEEP_FILE = "sweep.json"


def read_results(sweep_dir):
  """The lines of results.jsonl by trial_id (a torn last line from a crash is skipped, not fatal)."""
  path = os.path.join(sweep_dir, RESULTS_FILE)
  done = {}
  if not os.path.exists(path):
    return done
  with open(path) as f:
    for line in f:
      try:
        obj = json.loads(line)
      except json.JSONDecodeError:
        logging.warning("%s: skipping an unreadable line (a crash while writing?)", path)
        continue
      done.setdefault(obj.get("trial_id"), obj)
  return done


@contextlib.contextmanager
def _locked(sweep_dir):
  """An exclusive lock on the sweep directory: workers sharing a file system append one at a time."""
  with open(os.path.join(sweep_dir, ".lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def record(sweep_dir, line):
  """Appends `line` unless its point is already recorded; returns the line that stands in the file."""
  with _locked(sweep_dir):
    existing = read_results(sweep_dir).get(line["trial_id"])
    if existing is not None:
      return existing
    io.append_jsonl(os.path.join(sweep_dir, RESULTS_FILE), line)
    return line


def check_sweep_dir(sweep_dir, description):
  """Writes sweep.json, or refuses a directory whose sweep.json describes another study."""
  path = os.path.join(sweep_dir, SWEEP_FILE)
  description = io.clean(description)
  if os.path.exists(path):
    previous = io.read_json(path)
    # A sweep.json from before the budget and augment existed held their defaults (the base drops max_steps).
    previous = dict(previous, budget=previous.get("budget", config_lib.LATER_HPARAMS["budget"]))
    if isinstance(previous.get("base"), dict):
      previous["base"] = {"augment": config_lib.LATER_HPARAMS["augment"], **previous["base"]}
    fixed = {k: v for k, v in previous.items() if k != "report_eps"}
    if fixed != {k: v for k, v in description.items() if k != "report_eps"}:
      diff = sorted(k for k in set(previous) | set(description)
                    if k != "report_eps" and previous.get(k) != description.get(k))
      raise UsageError(f"--sweep_dir={sweep_dir}: holds a different study ({', '.join(diff)} differ); "
                       "choose another directory")
  os.makedirs(sweep_dir, exist_ok=True)
  io.write_json(path, description)
