"""Train one network with SGD and measure it: `python -m tfrobust.main --batch_size=256 --lr=0.05`.

Writes under --output_dir (names and formats: tfrobust.records): result.json (atomic, at the end), examples.npz
(per-example outcomes), flags.cfg (repeat with --flagfile), tensorboard/, checkpoints/ (the same --output_dir
resumes), saved_model/, and each evaluator's figures.
"""

import os

from absl import flags as absl_flags

from tfrobust import cli
from tfrobust import io
from tfrobust.cli import flags
from tfrobust.records import names

FLAGS = absl_flags.FLAGS
flags.define_flags()
absl_flags.DEFINE_string("output_dir", None, "Where the run is written (default runs/<timestamp>); reusing it "
                    "resumes the run, and a directory holding other hyperparameters is refused.")


def main(argv):
  cli.check_no_arguments(argv)
  experiment = flags.experiment_from_flags(FLAGS).validate()  # before TensorFlow loads
  from tfrobust import distribute  # TensorFlow from here on: bad flags were refused without it
  from tfrobust.experiment import run
  strategy = distribute.make_strategy(FLAGS.num_cpu_devices)
  output_dir = FLAGS.output_dir or cli.default_output_dir()
  result = run.run_experiment(experiment, output_dir, strategy=strategy, extra={"flags": FLAGS.flags_into_string()})
  if distribute.is_chief(strategy):
    io.write_text(os.path.join(output_dir, names.FLAGS_FILE), FLAGS.flags_into_string())
  m = result["metrics"]
  status = "DIVERGED" if result["diverged"] else "done"
  print(f"{status}: test accuracy {m['test/accuracy']:.4f}, test loss {m['test/loss']:.4f} -> "
        f"{os.path.join(output_dir, names.RESULT_FILE)}")


def run():
  cli.run_main(main, doc=__doc__)
