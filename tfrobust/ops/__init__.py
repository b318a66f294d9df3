"""The fused PGD step: a compiled TensorFlow op when it is built, else the same expression in plain TF.

`pgd_step_linf` / `pgd_step_l2` compute one projected step of PGD (semantics in fallback.py, in the
order cleverhans uses); the PGD loop around them is tfrobust/evaluators/robustness/attacks.py (`pgd` with
backend="fused"). The compiled library tfrobust/ops/_pgd_step_ops.so (built by
`python -m tfrobust.build_ops`) is loaded on first use; when it is missing, fails to load, or the
environment sets TFROBUST_DISABLE_OPS=1, the pure-TF fallback runs instead and the log says so.
`implementation()` tells which. The compiled ops have no gradient (registered not differentiable): an
attack differentiates the loss at x, never through its own step.
"""

import os

import tensorflow as tf
from absl import logging

from tfrobust.ops import fallback

LIBRARY_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_pgd_step_ops.so")
DISABLE_ENV = "TFROBUST_DISABLE_OPS"
OP_NAMES = ("PgdStepLinf", "PgdStepL2")

_library = None
_decided = False


def implementation():
  """"compiled" when the C++/CUDA op library is loaded, else "fallback" (plain TF ops)."""
  return "compiled" if _load() is not None else "fallback"


def pgd_step_linf(x, x0, grad, *, eps, step_size):
  """One L∞ PGD step: clip(x0 + clip(clip(x + step_size·sign(grad), 0, 1) − x0, −eps, eps), 0, 1).

  x, x0, grad: same shape, dimension 0 the batch; x and x0 on the pixel scale [0, 1]; float32, float16
    or bfloat16 (arithmetic in float32). x0 is the clean image, x the current adversarial one.
  eps: radius of the L∞ ball around x0, scalar on the [0, 1] scale, ≥ 0.
  step_size: per-step move on the [0, 1] scale (cleverhans' eps_iter).
  """
  return _step("linf", x, x0, grad, eps, step_size)


def pgd_step_l2(x, x0, grad, *, eps, step_size):
  """One L2 PGD step: move step_size along grad/‖grad‖₂ per example, clip to [0, 1], scale the
  perturbation from x0 by min(1, eps/‖η‖₂), clip to [0, 1].

  Arguments as for pgd_step_linf; eps is the L2 radius per example on the [0, 1] pixel scale.
  """
  return _step("l2", x, x0, grad, eps, step_size)


def _step(norm, x, x0, grad, eps, step_size):
  library = _load()
  if library is None:
    return fallback.STEPS[norm](x, x0, grad, eps=eps, step_size=step_size)
  # The same static checks as the fallback, so a bad call raises the same ValueError with either backend;
  # what only shows at run time (unknown shapes, a negative eps tensor) the kernel reports.
  x, x0, grad, eps, step_size = fallback.check_args(f"pgd_step_{norm}", x, x0, grad, eps, step_size)
  op = library.pgd_step_linf if norm == "linf" else library.pgd_step_l2
  return op(x=x, x0=x0, grad=grad, eps=eps, step_size=step_size)


def _load():
  """Loads the library once; logs which backend runs and why."""
  global _library, _decided
  if _decided:
    return _library
  _decided = True
  if os.environ.get(DISABLE_ENV, "0") not in ("", "0"):
    logging.info("PGD step: %s is set, running the pure-TF fallback", DISABLE_ENV)
  elif not os.path.exists(LIBRARY_PATH):
    logging.info("PGD step: %s is not built (python -m tfrobust.build_ops), running the pure-TF fallback",
                 LIBRARY_PATH)
  else:
    try:
      library = tf.load_op_library(LIBRARY_PATH)
    except (tf.errors.OpError, OSError, RuntimeError) as e:
      # Typically a library built against another TensorFlow version (undefined symbols).
      logging.warning("PGD step: cannot load %s (%s), running the pure-TF fallback; rebuild it with "
                      "python -m tfrobust.build_ops", LIBRARY_PATH, str(e).splitlines()[0])
    else:
      _register_not_differentiable()
      _library = library
      logging.info("PGD step: compiled op from %s", LIBRARY_PATH)
  return _library


def _register_not_differentiable():
  for name in OP_NAMES:
    try:
      tf.no_gradient(name)
    except KeyError:  # already registered (a second load in the same process)
      pass
