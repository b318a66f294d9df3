"""Build the fused PGD op: `python -m tfrobust.build_ops [--cuda] [--cuda_check [--run_harness]] [--force]`.

Compiles tfrobust/ops/_pgd_step_ops.so (tfrobust/ops/build.py; docs/ops.md). Needs no TensorFlow for
--cuda_check (absl-py is the one package a bare GPU machine needs). Exit status 0 when built (or up to date),
1 when it could not be built (the reason is printed; tfrobust then uses the pure-TF fallback), 2 on bad flags.
"""

from absl import flags

from tfrobust import cli
from tfrobust.errors import UsageError
from tfrobust.ops import build

FLAGS = flags.FLAGS
flags.DEFINE_bool("cuda", False, f"Also compile the CUDA kernel (or {build.CUDA_ENV}=1).")
flags.DEFINE_bool("cuda_check", False, "Compile the standalone CUDA harness (build/pgd_step_harness) instead of "
                  "the library.")
flags.DEFINE_bool("run_harness", False, "With --cuda_check: run it (needs a GPU).")
flags.DEFINE_bool("force", False, "Rebuild even if up to date.")
flags.DEFINE_bool("quiet", False, "Print only failures.")


def main(argv):
  cli.check_no_arguments(argv)
  if FLAGS.run_harness and not FLAGS.cuda_check:
    raise UsageError("--run_harness: goes with --cuda_check")
  verbose = not FLAGS.quiet
  if FLAGS.cuda_check:
    ok = build.cuda_check(verbose, run=FLAGS.run_harness) is not None
  else:
    ok = build.build(verbose, cuda=True if FLAGS.cuda else None, force=FLAGS.force) is not None
  return 0 if ok else 1


def run():
  cli.run_main(main, doc=__doc__)
