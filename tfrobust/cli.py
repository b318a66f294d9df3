"""What every entry point shares: flags parsed without tracebacks, UsageError as one line and exit status 2."""

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
from absl import flags
from absl import logging

from tfrobust import onednn
from tfrobust.errors import UsageError  # noqa: F401 (re-exported for entry points)


def _parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
    sys.exit(2)


def run_main(main):
  """`app.run(main)`, with bad flags and UsageError reported as one line on stderr and exit status 2."""
  def guarded(argv):
    if not flags.FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)  # progress lines are printed; library INFO chatter is not
    # TensorFlow is not loaded yet (see _QuietTensorFlowImport): oneDNN can still be chosen for this model.
    onednn.configure(model=flags.FLAGS["model"].value if "model" in flags.FLAGS else None)
    try:
      return main(argv)
    except UsageError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
  app.run(guarded, flags_parser=_parse_flags)


def float_list(values):
  """absl list flags arrive as strings; a clear error names the value that is not a number."""
  out = []
  for v in values or []:
    try:
      out.append(float(v))
    except ValueError:
      raise UsageError(f"{v!r} is not a number") from None
  return tuple(out)


def check_saved_model_flags(argv, FLAGS):  # pylint: disable=invalid-name
  """The checks every entry point that measures an exported model shares: no stray arguments, a
  --saved_model directory, and exactly one data source (--dataset or --npz)."""
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.saved_model or not os.path.isdir(FLAGS.saved_model):
    raise UsageError(f"--saved_model={FLAGS.saved_model}: required, a SavedModel directory")
  if (FLAGS.dataset is None) == (FLAGS.npz is None):
    raise UsageError("--dataset / --npz: give exactly one of them")
