"""Calibrate the verdict rules: `python -m tfrobust.calibrate [--replicates=N] [--reps=R] [--docs=docs/verdicts.md]`.

Simulates studies whose truth is known (every component at 0, ½, 1 and 2 × its margin) with the noise of the
committed mnist5k study, judges each with the report's own code (tfrobust.report.calibration) and prints the
operating characteristics: P(supported), P(against), P(inconclusive) per truth and the coverage of the 95%
intervals. --docs writes the table into that file between its calibration markers. Exit status 0 when the goals
are met (P(supported) ≤ 5% where the claim is false, coverage ≥ 93%), 1 when not, 2 on bad input.
"""

import platform
import subprocess

from absl import flags

from tfrobust import cli, io

FLAGS = flags.FLAGS
flags.DEFINE_integer("replicates", 200, "Simulated studies per true effect (> 0).")
flags.DEFINE_integer("reps", 1000, "Bootstrap replicates per judged component (≥ 100).")
flags.DEFINE_float("rho", 0.5, "Correlation of networks scored on the same examples (latent, 0 ≤ ρ < 1).")
flags.DEFINE_integer("seed", 0, "Random seed of the simulation.")
flags.DEFINE_string("docs", None, "Markdown file whose calibration block is replaced by the table.")


def _cpu():
  try:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    name = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
  except (OSError, StopIteration, subprocess.SubprocessError):
    name = platform.processor() or platform.machine()
  return name


def main(argv):
  cli.check_no_arguments(argv)
  if FLAGS.replicates <= 0 or FLAGS.reps < 100 or not 0 <= FLAGS.rho < 1:
    raise cli.UsageError("--replicates must be > 0, --reps ≥ 100 and 0 ≤ --rho < 1")
  from tfrobust.report import calibration
  text = None
  if FLAGS.docs:
    try:
      with open(FLAGS.docs, encoding="utf-8") as f:
        text = f.read()
      calibration.replace_block(text, "")
    except (OSError, ValueError) as e:
      raise cli.UsageError(f"--docs={FLAGS.docs}: {e}") from None
  noise = calibration.Noise(rho=FLAGS.rho)
  table, seconds = calibration.run(FLAGS.replicates, reps=FLAGS.reps, noise=noise, seed=FLAGS.seed)
  block = calibration.markdown(table, seconds=seconds, replicates=FLAGS.replicates, reps=FLAGS.reps, cpu=_cpu(),
                               noise=noise)
  print(block, end="")
  if text is not None:
    io.write_text(FLAGS.docs, calibration.replace_block(text, block))
  return 1 if calibration.goals(table) else 0


def run():
  cli.run_main(main, doc=__doc__)
