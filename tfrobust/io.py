"""Files written one way everywhere: atomically (a temporary file beside the target, then a rename), so that a
crash or a kill never leaves half a result, report or figure behind. JSON is written JSON-safe (numpy scalars
to Python, NaN/inf to null).

No TensorFlow and no matplotlib import here: `write_png` takes a figure the caller has drawn.
"""

import importlib.metadata
import json
import math
import os
import platform

from tfrobust import onednn


def clean(obj):
  """JSON-safe copy: numpy scalars to Python, NaN/inf to None (JSON has no NaN)."""
  if isinstance(obj, dict):
    return {str(k): clean(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [clean(v) for v in obj]
  if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
    obj = obj.item()
  if isinstance(obj, float) and not math.isfinite(obj):
    return None
  return obj


def _tmp(path):
  return f"{path}.tmp.{os.getpid()}"


def write_text(path, text):
  """Writes `text` (UTF-8) to `path` atomically; returns `path`."""
  return write_bytes(path, text.encode("utf-8"))


def write_bytes(path, data):
  """Writes `data` (bytes) to `path` atomically; returns `path`."""
  tmp = _tmp(path)
  with open(tmp, "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
  return path


def write_json(path, obj):
  """Writes `obj` as indented, key-sorted JSON to `path` atomically; returns `path`."""
  return write_text(path, json.dumps(clean(obj), indent=2, sort_keys=True) + "\n")


def write_png(fig, path, *, dpi=100):
  """Saves a matplotlib figure as PNG to `path` atomically; returns `path` (closing the figure is the caller's)."""
  tmp = _tmp(path)
  fig.savefig(tmp, format="png", dpi=dpi)
  os.replace(tmp, path)
  return path


def append_jsonl(path, obj):
  """Appends one line to a JSON-lines file, whole or not at all: a write cut short (disk full, a file-size limit, a
  signal) is retried for the rest, and any failure truncates the file back to where the line began, so readers
  never see a partial line from this writer."""
  line = (json.dumps(clean(obj), sort_keys=True) + "\n").encode()
  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
  start = os.fstat(fd).st_size
  try:
    done = 0
    while done < len(line):
      done += os.write(fd, line[done:])
    os.fsync(fd)
  except BaseException:
    os.ftruncate(fd, start)
    raise
  finally:
    os.close(fd)


def read_json(path):
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def versions():
  """Versions of the libraries that shape the numbers (every result file records them)."""
  out = {"python": platform.python_version()}
  for name in ("tensorflow", "tensorflow-cpu", "keras", "numpy", "cleverhans", "keras-tuner",
               "tensorflow-datasets", "scikit-learn", "tfrobust"):
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  out.update(onednn.state())  # oneDNN kernels on or off, and who chose (tfrobust.onednn)
  return out
