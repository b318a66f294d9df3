"""What every entry point shares: flags parsed without tracebacks, UsageError as one line and exit status 2."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TF's C++ INFO lines drown the progress output


def _import_tensorflow_quietly():
  """Imports TensorFlow with file descriptor 2 closed for the moment: TF 2.21's C++ start-up lines
  (oneDNN, absl::InitializeLog) ignore TF_CPP_MIN_LOG_LEVEL and would turn a one-line error into five.
  No op runs here: logical CPU devices and collective ops must be configured before the first one."""
  if "tensorflow" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
    return
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  try:
    os.dup2(devnull, 2)
    import tensorflow  # noqa: F401
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


_import_tensorflow_quietly()

from absl import app
from absl import flags
from absl import logging

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
    try:
      return main(argv)
    except UsageError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
  import tensorflow as tf
  tf.get_logger().setLevel("WARNING")
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
