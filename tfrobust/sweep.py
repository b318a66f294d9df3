"""Run the study: `python -m tfrobust.sweep --flagfile=flags/digits_study.cfg --sweep_dir=DIR`.

Every point of regimes × batch sizes × momenta × seeds trains for the same budget — the same epochs, or with
--budget=steps the same number of SGD updates — with the run flags of `tfrobust.main` (--lr is η at
--base_batch_size), is evaluated as a single run would be, and lands in
DIR/results.jsonl; then DIR/report/ is written. Running the same command again resumes.
Exit status: 0 when every point finished (diverged runs included), 1 when a trial failed or points are
missing, 2 on bad input.

Distributed (keras-tuner's chief/worker mode), one chief and any number of workers sharing DIR:
  KERASTUNER_TUNER_ID=chief   KERASTUNER_ORACLE_IP=HOST KERASTUNER_ORACLE_PORT=PORT python -m tfrobust.sweep ...
  KERASTUNER_TUNER_ID=tuner0  KERASTUNER_ORACLE_IP=HOST KERASTUNER_ORACLE_PORT=PORT python -m tfrobust.sweep ...
"""

import os

from absl import flags

from tfrobust import cli
from tfrobust import experiment_flags
from tfrobust import grid as grid_lib

FLAGS = flags.FLAGS
experiment_flags.define_flags()
flags.DEFINE_string("sweep_dir", None, "Directory of the study (results.jsonl, trials/, report/); the same "
                    "directory resumes, and one holding another grid is refused.")
flags.DEFINE_list("regimes", ["fixed_lr", "constant_ratio"],
                  f"Learning-rate regimes: {', '.join(grid_lib.REGIMES)} (η fixed, η/B fixed, η/√B fixed).")
flags.DEFINE_list("batch_sizes", ["16", "32", "64", "128", "256"], "Batch sizes B of the grid.")
flags.DEFINE_list("momenta", ["0", "0.9"], "Momenta μ of the grid.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of the grid (error bars are over seeds).")
# A string, not an enum: a bad value is a UsageError from Grid.validate, like the other grid checks.
flags.DEFINE_string("budget", "epochs", "What every point gets the same of: epochs (--epochs each; every B sees "
                    "the data equally often) or steps (round(epochs · n_train / base_batch_size) SGD updates each, "
                    "so a larger B trains more epochs: Hoffer et al. 2017; warm-up and decay epochs are rescaled "
                    "to fall at the same update).")
flags.DEFINE_float("report_eps", None, "ε (on the [0, 1] scale) at which the report and the HParams dashboard "
                   "compare adversarial accuracy (default: the middle of the ε grid).")
flags.DEFINE_bool("trial_progress", False, "Show each trial's per-epoch progress, not one line per trial.")


def grid_from_flags():
  return grid_lib.Grid(regimes=tuple(FLAGS.regimes),
                       batch_sizes=grid_lib.parse_ints("batch_sizes", FLAGS.batch_sizes),
                       momenta=grid_lib.parse_floats("momenta", FLAGS.momenta),
                       seeds=grid_lib.parse_ints("seeds", FLAGS.seeds), budget=FLAGS.budget)


def main(argv):
  if len(argv) > 1:
    raise cli.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.sweep_dir:
    raise cli.UsageError("--sweep_dir: required (where the study is written and resumed)")
  grid = grid_from_flags().validate()
  experiment = experiment_flags.experiment_from_flags(FLAGS)
  from tfrobust import distribute
  from tfrobust import study
  from tfrobust import sweep_files
  strategy = None if study.is_chief() else distribute.make_strategy(FLAGS.num_cpu_devices)
  outcome = study.run_study(grid, experiment, FLAGS.sweep_dir, strategy=strategy, report_eps=FLAGS.report_eps,
                            trial_progress=FLAGS.trial_progress)
  if outcome is None:  # a distributed worker: the chief sums up
    return 0
  if outcome.failed:
    print(f"study: {len(outcome.failed)} trial(s) failed ({', '.join(outcome.failed[:5])}); their errors are "
          f"in {os.path.join(FLAGS.sweep_dir, sweep_files.RESULTS_FILE)}", flush=True)
  return 0 if outcome.complete else 1


if __name__ == "__main__":
  cli.run_main(main)
