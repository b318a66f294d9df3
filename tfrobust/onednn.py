"""Whether TensorFlow's oneDNN CPU kernels are on: chosen per workload before TensorFlow loads.

TensorFlow's CPU wheel turns its oneDNN kernels on by itself only on CPUs with AVX-512-class features; on an
AVX2-only CPU it falls back to Eigen, 2-3x slower for convolutions and Hessian-vector products. Whatever the CPU,
`bench/onednn.py` measures both settings side by side per workload; a dense-only network (the MLP on digits)
gains nothing from oneDNN. So every entry point asks for oneDNN unless the model is dense-only, and a user's own
`TF_ENABLE_ONEDNN_OPTS` always wins. The variable is read once, when TensorFlow is imported; the entry points
import TensorFlow only after their flags are parsed, so the choice can depend on `--model`. oneDNN and
`--deterministic` agree: the bitwise kill -9 resume test trains LeNet (oneDNN on by this rule) and the 1-vs-2
replica test passes with TF_ENABLE_ONEDNN_OPTS=1 as with 0.
"""

import os
import sys

ENV = "TF_ENABLE_ONEDNN_OPTS"
# Set beside ENV when tfrobust chose it, so that a child process that inherits both does not take tfrobust's
# own choice for the user's.
CHOSEN_ENV = "TFROBUST_ONEDNN_CHOSEN"
# Models without convolutions, for which oneDNN measured slower than TensorFlow's Eigen kernels.
DENSE_ONLY_MODELS = ("mlp",)

_choice = {"onednn": None, "onednn_source": "not chosen by tfrobust"}


def _on(value):
  return value.strip().lower() not in ("", "0", "false", "off", "no")


def configure(model=None):
  """Sets TF_ENABLE_ONEDNN_OPTS for this process unless the user set it or TensorFlow is already loaded.

  model: the --model of the run (None: not known, e.g. a SavedModel; oneDNN is then on).
  Returns {"onednn": bool or None, "onednn_source": why}, which result.json's `versions` records.
  """
  if ENV in os.environ and os.environ.get(CHOSEN_ENV) == os.environ[ENV]:
    _choice.update(onednn=_on(os.environ[ENV]), onednn_source="tfrobust default, inherited from the parent process")
  elif ENV in os.environ:
    _choice.update(onednn=_on(os.environ[ENV]), onednn_source=f"{ENV}={os.environ[ENV]} set by the user")
  elif "tensorflow" in sys.modules:
    _choice.update(onednn=None, onednn_source="TensorFlow was loaded before tfrobust could choose")
  else:
    dense = model in DENSE_ONLY_MODELS
    os.environ[ENV] = os.environ[CHOSEN_ENV] = "0" if dense else "1"
    why = f"off for the dense-only model {model}" if dense else "on (convolutions and HVPs run 2-4x faster)"
    _choice.update(onednn=not dense, onednn_source=f"tfrobust default: {why}")
  return dict(_choice)


def state():
  """What `configure` chose; when it was never called, what the environment says (None: TF's own default)."""
  if _choice["onednn"] is None and ENV in os.environ:
    return {"onednn": _on(os.environ[ENV]), "onednn_source": f"{ENV}={os.environ[ENV]}"}
  return dict(_choice)
