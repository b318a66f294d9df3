"""The study report: `python -m tfrobust.report --sweep_dir=DIR [--acc_margin=POINTS] [--eig_margin=LOG2]
[--momentum_margin=POINTS] [--c2_margin=POINTS] [--trained_loss=NATS]`.

Reads DIR/results.jsonl (and sweep.json, and each trial's examples.npz where the runs wrote them) and writes
DIR/report/ (tfrobust.report.build). No TensorFlow: the report runs anywhere in a few seconds. Bad input: one
line on stderr, exit status 2, nothing written.
"""

from absl import flags

from tfrobust import cli
from tfrobust.report import claims, quality

FLAGS = flags.FLAGS
flags.DEFINE_string("sweep_dir", None, "Sweep directory holding results.jsonl (and sweep.json).")
flags.DEFINE_float("acc_margin", claims.ACC_MARGIN, "Practical margin for accuracy effects, in accuracy points "
                   "per doubling of B (> 0).")
flags.DEFINE_float("eig_margin", claims.EIG_MARGIN, "Practical margin for the log2 λ_max slope, per doubling of "
                   "B (> 0).")
flags.DEFINE_float("momentum_margin", claims.MOMENTUM_MARGIN, "Practical margin for C3's difference in "
                   "differences, in accuracy points (> 0).")
flags.DEFINE_float("c2_margin", claims.C2_MARGIN, "Practical margin for C2's per-B contrasts acc(B) − acc(B_ref), "
                   "in accuracy points, a raw difference, not per doubling (> 0).")
flags.DEFINE_float("trained_loss", quality.TRAINED_LOSS, "A trial is trained when its final training loss is at "
                   "most this many nats (> 0), fixed before the results are read. Under the loss budget the "
                   "trained rule is the budget's own target, and this flag is not used.")


def main(argv):
  cli.check_no_arguments(argv)
  if not FLAGS.sweep_dir:
    raise cli.UsageError("--sweep_dir: required (the sweep directory that holds results.jsonl)")
  for name in ("acc_margin", "eig_margin", "momentum_margin", "c2_margin"):
    claims.check_margin(FLAGS[name].value, f"--{name}")
  quality.check_trained_loss(FLAGS.trained_loss, "--trained_loss")
  from tfrobust.report.build import write_report  # matplotlib and the rest only once the flags are good
  path = write_report(FLAGS.sweep_dir, acc_margin=FLAGS.acc_margin, eig_margin=FLAGS.eig_margin,
                      momentum_margin=FLAGS.momentum_margin, c2_margin=FLAGS.c2_margin,
                      trained_loss=FLAGS.trained_loss)
  print(f"report: {path}")
  return 0


def run():
  cli.run_main(main, doc=__doc__)
