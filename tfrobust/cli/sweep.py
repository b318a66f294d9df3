"""Run the study: `python -m tfrobust.sweep --flagfile=flags/digits_study.cfg --sweep_dir=DIR`.

Every point of regimes × batch sizes × momenta × seeds trains for the same budget — the same epochs, or with
--budget=steps the same number of SGD updates — with the run flags of `tfrobust.main` (--lr is η at
--base_batch_size), is evaluated as a single run would be, and lands in
DIR/results.jsonl; then DIR/report/ is written. Running the same command again resumes.
Exit status: 0 when every point finished (diverged runs included), 1 when a trial failed or points are
missing, 2 on bad input.

Distributed (keras-tuner's chief/worker mode), one chief (the oracle) and any number of workers sharing DIR:
  KERASTUNER_TUNER_ID=chief   KERASTUNER_ORACLE_IP=HOST KERASTUNER_ORACLE_PORT=PORT python -m tfrobust.sweep ...
  KERASTUNER_TUNER_ID=tuner0  KERASTUNER_ORACLE_IP=HOST KERASTUNER_ORACLE_PORT=PORT python -m tfrobust.sweep ...
"""

import os

from absl import flags as absl_flags

from tfrobust import cli
from tfrobust.cli import flags
from tfrobust.cli.flags import study as study_flags
from tfrobust.records import names
from tfrobust.records import sweep as sweep_records
from tfrobust.report import build as report

FLAGS = absl_flags.FLAGS
flags.define_flags()
study_flags.define_flags()
study_flags.set_study_defaults()


def main(argv):
  cli.check_no_arguments(argv)
  if not FLAGS.sweep_dir:
    raise cli.UsageError("--sweep_dir: required (where the study is written and resumed)")
  grid = study_flags.grid_from_flags().validate()
  experiment = flags.experiment_from_flags(FLAGS).validate()
  from tfrobust import distribute  # TensorFlow from here on: bad flags were refused without it
  from tfrobust.study import runner, tuner
  strategy = None if tuner.is_oracle() else distribute.make_strategy(FLAGS.num_cpu_devices)
  outcome = runner.run_study(grid, experiment, FLAGS.sweep_dir, strategy=strategy, report_eps=FLAGS.report_eps,
                             trial_progress=FLAGS.trial_progress)
  if outcome is None:  # a distributed worker: the chief sums up
    return 0
  if sweep_records.read_lines(FLAGS.sweep_dir).by_id:
    print(f"report: {report.write_report(FLAGS.sweep_dir)}", flush=True)
  if outcome.failed:
    print(f"study: {len(outcome.failed)} trial(s) failed ({', '.join(outcome.failed[:5])}); their errors are "
          f"in {os.path.join(FLAGS.sweep_dir, names.RESULTS_FILE)}", flush=True)
  return 0 if outcome.complete else 1


def run():
  cli.run_main(main, doc=__doc__)
