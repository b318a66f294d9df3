"""Result files: written atomically (temporary file + rename), so a crash never leaves half a result."""

import importlib.metadata
import json
import math
import os
import platform

from tfrobust import onednn


def _clean(obj):
  """JSON-safe copy: numpy scalars to Python, NaN/inf to None (JSON has no NaN)."""
  if isinstance(obj, dict):
    return {str(k): _clean(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_clean(v) for v in obj]
  if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
    obj = obj.item()
  if isinstance(obj, float) and not math.isfinite(obj):
    return None
  return obj


def write_json(path, obj):
  """Writes `obj` as JSON to `path` atomically."""
  tmp = f"{path}.tmp.{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(_clean(obj), f, indent=2, sort_keys=True)
    f.write("\n")
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def append_jsonl(path, obj):
  """Appends one line to a JSON-lines file with a single write (a line is never interleaved or torn)."""
  line = json.dumps(_clean(obj), sort_keys=True) + "\n"
  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
  try:
    os.write(fd, line.encode())
    os.fsync(fd)
  finally:
    os.close(fd)


# Hyperparameters added after runs and sweeps already existed, with the value that reproduces those runs: a
# directory written before a key existed compares as if it held that value, so it can still be resumed.
LATER_HPARAMS = {"augment": "none", "max_steps": 0, "budget": "epochs"}


def with_later_defaults(hparams):
  """`hparams` with every key of LATER_HPARAMS it lacks set to that default."""
  return {**LATER_HPARAMS, **hparams}


def read_json(path):
  with open(path) as f:
    return json.load(f)


def versions():
  """Versions of the libraries that shape the numbers."""
  out = {"python": platform.python_version()}
  for name in ("tensorflow", "tensorflow-cpu", "keras", "numpy", "cleverhans", "keras-tuner",
               "tensorflow-datasets", "scikit-learn", "tfrobust"):
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  out.update(onednn.state())  # oneDNN kernels on or off, and who chose (tfrobust.onednn)
  return out
