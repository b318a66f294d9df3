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

import dataclasses
import os
import time

from absl import flags as absl_flags

from tfrobust import cli
from tfrobust.cli import flags
from tfrobust.cli.flags import study as study_flags
from tfrobust.records import names
from tfrobust.records import sweep as sweep_records
from tfrobust.report import build as report
from tfrobust.report import effects, sequential

FLAGS = absl_flags.FLAGS
flags.define_flags()
study_flags.define_flags()
study_flags.set_study_defaults()


def main(argv):
  cli.check_no_arguments(argv)
  if not FLAGS.sweep_dir:
    raise cli.UsageError("--sweep_dir: required (where the study is written and resumed)")
  plan = study_flags.plan_from_flags()
  grid = study_flags.grid_from_flags().validate()
  experiment = flags.experiment_from_flags(FLAGS).validate()
  from tfrobust import distribute  # TensorFlow from here on: bad flags were refused without it
  from tfrobust.study import runner, tuner
  if tuner.is_oracle():  # the chief trains nothing (it builds one network to size the stacks): GPUs to the workers
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.config.set_visible_devices([], "GPU")
  strategy = None if tuner.is_oracle() else distribute.make_strategy(FLAGS.num_cpu_devices)
  kw = dict(strategy=strategy, report_eps=FLAGS.report_eps, trial_progress=FLAGS.trial_progress)
  if plan is None:
    outcome = runner.run_study(grid, experiment, FLAGS.sweep_dir, **kw)
  else:
    outcome = run_looks(plan, grid, experiment, **kw)
  if outcome is None:  # a distributed worker: the chief sums up
    return 0
  if sweep_records.read_lines(FLAGS.sweep_dir).by_id:
    print(f"report: {report.write_report(FLAGS.sweep_dir)}", flush=True)
  if outcome.failed:
    print(f"study: {len(outcome.failed)} trial(s) failed ({', '.join(outcome.failed[:5])}); their errors are "
          f"in {os.path.join(FLAGS.sweep_dir, names.RESULTS_FILE)}", flush=True)
  return 0 if outcome.complete else 1


def run_looks(plan, grid, experiment, **kw):
  """A --seeds=auto study: each look's seeds over the whole grid (every point once, resumable like any study),
  then the group-sequential verdicts on that look's seeds; the next look while a component that can still be
  decided is undecided. The chief (or the only process) judges and records each look's decision (records.sweep.record_look);
  a distributed worker takes the decisions from there, and skips the looks already decided when it (re)starts."""
  from tfrobust.study import runner, tuner  # pylint: disable=import-outside-toplevel
  worker = tuner.is_worker()
  outcome = None
  for look, seeds in enumerate(plan.looks, 1):
    decision = sweep_records.read_looks(FLAGS.sweep_dir).get(str(look))
    if not (worker and decision):
      grid_k = dataclasses.replace(grid, seeds=tuple(range(seeds)))
      outcome = runner.run_study(grid_k, experiment, FLAGS.sweep_dir, sequential=plan.as_dict(), look=look, **kw)
    if worker:
      while decision is None:  # the chief judges once every point of the look is in
        time.sleep(tuner.LOOK_POLL_S)
        decision = sweep_records.read_looks(FLAGS.sweep_dir).get(str(look))
      nxt = decision["next"]
    else:
      nxt = _judge_look(plan, look, seeds, outcome)
      sweep_records.record_look(FLAGS.sweep_dir, look, seeds, nxt)
    if nxt is None:
      break
  return outcome


def _judge_look(plan, look, seeds, outcome):
  """The next look's seeds (None: stop), judged on this look's seeds alone; the progress line."""
  rows = report.build(FLAGS.sweep_dir, seeds=seeds).rows
  left = sequential.undecided(rows, plan, seeds)
  decided = [f"{r['claim']}.{r['component']} {r['verdict']}" for r in rows if r["control"] == effects.ALL
             and r["component"] != "claim" and r["verdict"] in sequential.DECIDED]
  nxt = sequential.next_look(plan, seeds) if left else None
  if outcome is not None:
    print(f"look {look} ({seeds} seeds): decided {', '.join(decided) or 'none'}; "
          + (f"undecided {', '.join(left)}; next look: {nxt} seeds" if nxt else
             "stopping: " + (f"the cap of {plan.max_seeds} seeds is reached" if seeds >= plan.max_seeds
                             else "every component is decided or cannot be decided within the plan")), flush=True)
  return nxt


def run():
  cli.run_main(main, doc=__doc__)
