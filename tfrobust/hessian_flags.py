"""The Hessian evaluator's frozen config (re-exported as tfrobust.hessian.HessianConfig), its absl flags and
the translation between them. Free of TensorFlow, so that entry points reject bad flags before TF loads.

Only entry points call `define_flags()`; --dataset, --data_dir, --seed and --batch_size belong to them.
"""

import dataclasses
import math
from typing import Optional

from absl import flags

from tfrobust.errors import UsageError

METHODS = ("power", "lanczos")
# PyHessian#5: estimates on a few hundred examples vary by 10x; its maintainer recommends ~4,096.
DEFAULT_EXAMPLES = 4096
WHOLE_SET_DATASETS = ("digits",)
_FLAG_NAMES = {"subset_seed": "hessian_seed"}


@dataclasses.dataclass(frozen=True)
class HessianConfig:
  """What to measure about the Hessian and on which examples. `examples=None`: the whole training set for
  digits, min(4096, training set) otherwise. `max_iter` bounds products per eigenvalue (power), Lanczos steps,
  Hutchinson samples and SLQ steps; `tol` is the relative tolerance of each."""
  top_k: int = 1
  examples: Optional[int] = None
  subset_seed: int = 0
  method: str = "lanczos"
  max_iter: int = 100
  tol: float = 1e-3
  trace: bool = False
  density: bool = False
  input: bool = False
  per_layer: bool = False
  repeats: int = 1
  batch_size: int = 512

  def _bad(self, field, why):
    raise UsageError(f"--{_FLAG_NAMES.get(field, 'hessian_' + field)}={getattr(self, field)}: {why}")

  def validate(self):
    """Checks what can be checked without the model and data; raises UsageError naming the flag."""
    if self.top_k <= 0:
      self._bad("top_k", "must be >= 1")
    if self.examples is not None and self.examples <= 0:
      self._bad("examples", "must be >= 1")
    if self.method not in METHODS:
      self._bad("method", f"choose one of {', '.join(METHODS)}")
    if self.max_iter <= 0:
      self._bad("max_iter", "must be >= 1")
    if not (math.isfinite(self.tol) and self.tol > 0):
      self._bad("tol", "must be a finite number > 0")
    if self.repeats <= 0:
      self._bad("repeats", "must be >= 1")
    if self.batch_size <= 0:
      self._bad("batch_size", "must be >= 1")
    if self.method == "lanczos" and self.max_iter < self.top_k:
      self._bad("max_iter", f"Lanczos needs at least --hessian_top_k={self.top_k} steps")
    return self

  def num_examples(self, dataset_name, num_train):
    """The subset size: the flag, else the default for this dataset."""
    if self.examples is not None:
      return self.examples
    return num_train if dataset_name in WHOLE_SET_DATASETS else min(DEFAULT_EXAMPLES, num_train)

  def validate_against(self, num_params, num_train):
    """Checks that need the model (its number of parameters) and the training set size."""
    if self.top_k > num_params:
      self._bad("top_k", f"larger than the model's {num_params} parameters")
    if self.examples is not None and self.examples > num_train:
      self._bad("examples", f"larger than the training set ({num_train} examples)")
    return self.validate()


_DEFAULTS = HessianConfig()
_FLAGS = ("hessian_top_k", "hessian_examples", "hessian_seed", "hessian_method", "hessian_max_iter", "hessian_tol",
          "hessian_trace", "hessian_density", "hessian_input", "hessian_per_layer", "hessian_repeats",
          "hessian_batch_size")


def define_flags(flag_values=flags.FLAGS):
  """Defines the --hessian_* flags (idempotent: a second call is a no-op); `flag_values` for tests."""
  if "hessian_top_k" in flag_values:
    return
  fv = {"flag_values": flag_values}
  flags.DEFINE_integer("hessian_top_k", 0, "Number of top Hessian eigenvalues (the k algebraically largest) to measure; "
                       "0 = no Hessian section.", **fv)
  flags.DEFINE_integer("hessian_examples", None, "Training examples the Hessian loss averages over "
                       "(default: all of digits, min(4096, training set) otherwise).", **fv)
  flags.DEFINE_integer("hessian_seed", _DEFAULTS.subset_seed, "Seed of the training subset and of the "
                       "random start vectors (the same subset for every model of a sweep).", **fv)
  flags.DEFINE_string("hessian_method", _DEFAULTS.method, f"Eigen-solver ({' or '.join(METHODS)}): power "
                      "iteration with deflation (PyHessian) or Lanczos with full reorthogonalisation.", **fv)
  flags.DEFINE_integer("hessian_max_iter", _DEFAULTS.max_iter, "Max products per eigenvalue (power), "
                       "Lanczos steps, Hutchinson samples and SLQ steps.", **fv)
  flags.DEFINE_float("hessian_tol", _DEFAULTS.tol, "Relative tolerance: power stops when |Δλ|/(|λ|+1e-6) < "
                     "tol, Lanczos when each Ritz value's residual bound is <= tol·|λ|, Hutchinson when its "
                     "standard error is <= tol·|trace|.", **fv)
  flags.DEFINE_bool("hessian_trace", False, "Also estimate tr(H) by Hutchinson (Rademacher vectors).", **fv)
  flags.DEFINE_bool("hessian_density", False, "Also estimate the eigenvalue density by SLQ "
                    "(and plot hessian_density.png).", **fv)
  flags.DEFINE_bool("hessian_input", False, "Also measure the top eigenvalue of the input Hessian of "
                    "each example's loss, averaged over examples.", **fv)
  flags.DEFINE_bool("hessian_per_layer", False, "Also measure the top eigenvalue of each layer's "
                    "diagonal block of the Hessian.", **fv)
  flags.DEFINE_integer("hessian_repeats", _DEFAULTS.repeats, "Repeat the top eigenvalues on this many "
                       "subset seeds (hessian_seed, +1, ...) and report mean and spread.", **fv)
  flags.DEFINE_integer("hessian_batch_size", _DEFAULTS.batch_size, "Examples per HVP batch (memory only: "
                       "the loss is the mean over all hessian_examples).", **fv)


def config_from_flags(FLAGS, dataset_name):  # pylint: disable=invalid-name
  """The HessianConfig the flags ask for, validated; None when --hessian_top_k=0 asks for nothing."""
  del dataset_name  # The per-dataset default of --hessian_examples is resolved against the data.
  if FLAGS.hessian_top_k == 0:
    asked = [name for name in _FLAGS if name != "hessian_top_k" and FLAGS[name].present]
    if asked:
      raise UsageError(f"--{asked[0]}: needs --hessian_top_k >= 1 (the Hessian section is off)")
    return None
  return HessianConfig(
      top_k=FLAGS.hessian_top_k, examples=FLAGS.hessian_examples, subset_seed=FLAGS.hessian_seed,
      method=FLAGS.hessian_method, max_iter=FLAGS.hessian_max_iter, tol=FLAGS.hessian_tol,
      trace=FLAGS.hessian_trace, density=FLAGS.hessian_density, input=FLAGS.hessian_input,
      per_layer=FLAGS.hessian_per_layer, repeats=FLAGS.hessian_repeats,
      batch_size=FLAGS.hessian_batch_size).validate()
