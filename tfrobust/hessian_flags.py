"""absl flags of the Hessian evaluator and their translation into a frozen HessianConfig.

Only entry points call `define_flags()`; --dataset, --data_dir, --seed and --batch_size belong to them.
"""

from absl import flags

from tfrobust.errors import UsageError
from tfrobust.hessian import HessianConfig, METHODS

_DEFAULTS = HessianConfig()
_EXTRAS = ("trace", "density", "input", "per_layer")


def define_flags():
  """Defines the --hessian_* flags (idempotent: a second call is a no-op)."""
  if "hessian_top_k" in flags.FLAGS:
    return
  flags.DEFINE_integer("hessian_top_k", 0, "Number of top Hessian eigenvalues (largest |λ|) to measure; "
                       "0 = no Hessian section.")
  flags.DEFINE_integer("hessian_examples", None, "Training examples the Hessian loss averages over "
                       "(default: all of digits, min(4096, training set) otherwise).")
  flags.DEFINE_integer("hessian_seed", _DEFAULTS.subset_seed, "Seed of the training subset and of the "
                       "random start vectors (the same subset for every model of a sweep).")
  flags.DEFINE_enum("hessian_method", _DEFAULTS.method, METHODS, "Eigen-solver: power iteration with "
                    "deflation (PyHessian) or Lanczos with full reorthogonalisation.")
  flags.DEFINE_integer("hessian_max_iter", _DEFAULTS.max_iter, "Max products per eigenvalue (power), "
                       "Lanczos steps, Hutchinson samples and SLQ steps.")
  flags.DEFINE_float("hessian_tol", _DEFAULTS.tol, "Relative tolerance |Δλ|/(|λ|+1e-6) of the eigenvalues; "
                     "Hutchinson stops when its standard error is below tol·|trace|.")
  flags.DEFINE_bool("hessian_trace", False, "Also estimate tr(H) by Hutchinson (Rademacher vectors).")
  flags.DEFINE_bool("hessian_density", False, "Also estimate the eigenvalue density by SLQ "
                    "(and plot hessian_density.png).")
  flags.DEFINE_bool("hessian_input", False, "Also measure the top eigenvalue of the input Hessian of "
                    "each example's loss, averaged over examples.")
  flags.DEFINE_bool("hessian_per_layer", False, "Also measure the top eigenvalue of each layer's "
                    "diagonal block of the Hessian.")
  flags.DEFINE_integer("hessian_repeats", _DEFAULTS.repeats, "Repeat the top eigenvalues on this many "
                       "subset seeds (hessian_seed, +1, ...) and report mean and spread.")
  flags.DEFINE_integer("hessian_batch_size", _DEFAULTS.batch_size, "Examples per HVP batch (memory only: "
                       "the loss is the mean over all hessian_examples).")


def config_from_flags(FLAGS, dataset_name):  # pylint: disable=invalid-name
  """The HessianConfig the flags ask for, validated; None when --hessian_top_k=0 asks for nothing."""
  del dataset_name  # The per-dataset default of --hessian_examples is resolved against the data.
  if FLAGS.hessian_top_k == 0:
    asked = [name for name in _EXTRAS if FLAGS[f"hessian_{name}"].value]
    if asked:
      raise UsageError(f"--hessian_{asked[0]}: needs --hessian_top_k >= 1 (the Hessian section is off)")
    return None
  return HessianConfig(
      top_k=FLAGS.hessian_top_k, examples=FLAGS.hessian_examples, subset_seed=FLAGS.hessian_seed,
      method=FLAGS.hessian_method, max_iter=FLAGS.hessian_max_iter, tol=FLAGS.hessian_tol,
      trace=FLAGS.hessian_trace, density=FLAGS.hessian_density, input=FLAGS.hessian_input,
      per_layer=FLAGS.hessian_per_layer, repeats=FLAGS.hessian_repeats,
      batch_size=FLAGS.hessian_batch_size).validate()
