"""The command lines: every absl flag and every entry point lives under tfrobust/cli/, and nothing else in
tfrobust reads flags. `python -m tfrobust.main|sweep|evaluate|hessian|report` are thin modules calling in here:

  flags/       the flags of a training run (train.py), of each evaluator (robustness.py, hessian.py), of the
               study (study.py), and the experiment they make together (__init__.py)
  main.py      one training run;  sweep.py  the study;  evaluate.py  evaluators on a SavedModel;
  report.py    the study report

This module: what every entry point shares — flags parsed without tracebacks, UsageError as one line and exit
status 2, number lists parsed one way, and TensorFlow imported quietly and only after the flags are checked.
"""

import datetime
import importlib
import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TF's C++ INFO lines drown the progress output


class _QuietTensorFlowImport:
  """Meta-path hook: whenever TensorFlow is first imported (after flags are parsed and checked, by whatever
  module needs it), file descriptor 2 is closed for the moment. TF 2.21's C++ start-up lines (oneDNN,
  absl::InitializeLog) ignore TF_CPP_MIN_LOG_LEVEL and would turn a one-line error into five. Importing TF
  lazily also lets a bad flag be refused in about a second. No op runs during the import (logical CPU
  devices and collective ops must be configured before the first one)."""

  def find_spec(self, name, path=None, target=None):
    if name != "tensorflow" or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
      return None
    sys.meta_path.remove(self)
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
      os.dup2(devnull, 2)
      importlib.import_module("tensorflow")
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      os.close(devnull)
    return importlib.util.find_spec(name)  # already in sys.modules: the import system takes it from there


if "tensorflow" not in sys.modules:
  sys.meta_path.insert(0, _QuietTensorFlowImport())

from absl import app
from absl import flags as absl_flags  # `flags` is the subpackage tfrobust.cli.flags
from absl import logging

from tfrobust import onednn
from tfrobust.errors import UsageError  # noqa: F401 (re-exported for entry points)


def _parse_flags(argv):
  try:
    return absl_flags.FLAGS(argv)
  except absl_flags.Error as e:
    print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
    sys.exit(2)


def run_main(main, doc=None):
  """`app.run(main)`, with bad flags and UsageError reported as one line on stderr and exit status 2. `doc` (the
  entry point's docstring in tfrobust/cli/) heads --help, in place of the thin `python -m` module's."""
  if doc:
    sys.modules["__main__"].__doc__ = doc
  def guarded(argv):
    if not absl_flags.FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)  # progress lines are printed; library INFO chatter is not
    # TensorFlow is not loaded yet (see _QuietTensorFlowImport): oneDNN can still be chosen for this model.
    onednn.configure(model=absl_flags.FLAGS["model"].value if "model" in absl_flags.FLAGS else None)
    try:
      return main(argv)
    except UsageError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
  app.run(guarded, flags_parser=_parse_flags)


def numbers(flag, values, kind=float):
  """A list flag's strings as a tuple of `kind` (float or int); None stays None (the flag left out). A value that
  does not parse is a UsageError naming the flag, its value and the culprit."""
  if values is None:
    return None
  out = []
  for v in values:
    try:
      out.append(kind(v))
    except ValueError:
      what = "an integer" if kind is int else "a number"
      raise UsageError(f"--{flag}={','.join(values)}: {v!r} is not {what}") from None
  return tuple(out)


def default_output_dir():
  """runs/<timestamp>: where a run goes when --output_dir is not given."""
  return os.path.join("runs", datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))


def check_no_arguments(argv):
  """Entry points take flags only."""
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")


def check_saved_model_flags(argv, FLAGS):  # pylint: disable=invalid-name
  """The checks every entry point that measures an exported model shares: no stray arguments, a
  --saved_model directory, and exactly one data source (--dataset or --npz)."""
  check_no_arguments(argv)
  if not FLAGS.saved_model or not os.path.isdir(FLAGS.saved_model):
    raise UsageError(f"--saved_model={FLAGS.saved_model}: required, a SavedModel directory")
  if (FLAGS.dataset is None) == (FLAGS.npz is None):
    raise UsageError("--dataset / --npz: give exactly one of them")
