"""The Hessian evaluator's absl flags (--hessian_*) and the HessianConfig they make
(tfrobust/evaluators/hessian/config.py, where the defaults are).

Only entry points call `define_flags()`; --dataset, --data_dir, --seed and --batch_size belong to them.
"""

from absl import flags

from tfrobust.errors import UsageError
from tfrobust.evaluators.hessian.config import METHODS, HessianConfig

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
  """The HessianConfig the flags ask for (validated by ExperimentConfig.validate at the boundary); None when --hessian_top_k=0 asks for nothing."""
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
      batch_size=FLAGS.hessian_batch_size)
