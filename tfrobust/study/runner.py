"""The study: every grid point trained and evaluated through the single-run pipeline (tfrobust.experiment.run),
appended to results.jsonl (tfrobust.records owns its format), enumerated and distributed by keras-tuner
(tuner.py). The sweep command reports at the end.

Usable from Python (`run_study(grid, experiment, sweep_dir)`) as well as from `tfrobust.sweep`.
Layout of a sweep directory:
  sweep.json      the grid (with its budget: epochs or steps) and the base run settings (a directory holding
                  another grid or budget is refused)
  results.jsonl   one line per finished point: result.json plus trial_id (the point's key), regime, status
  trials/KEY/     each point's run directory (checkpoints, tensorboard, saved_model, result.json)
  tuner/          keras-tuner's own oracle and trial state (what resume and distribution go through)
  stacks.json     which points train together as one stacked computation (study/stacks.py)
  stacks/NAME/    a stack's own checkpoints, and the hand-off of its networks to their trials
  events.*        the HParams dashboard's configuration: every hyperparameter and metric registered
  report/         written at the end by tfrobust.report (the sweep command calls it; the study does not)

Resume is keras-tuner's reload of its oracle plus results.jsonl: a point already in results.jsonl is never
trained again (its metrics are handed back to the oracle), an interrupted point resumes from its checkpoints (a
stacked point from its stack's).
"""

import dataclasses
import os
import time
import traceback

import tensorflow as tf
from absl import logging
from tensorboard.plugins.hparams import api as hp

from tfrobust import data as data_lib
from tfrobust import distribute
from tfrobust import evaluators
from tfrobust.experiment import run as run_lib
from tfrobust.records import names
from tfrobust.records import sweep as sweep_records
from tfrobust.records.trial import headline, parse_trial
from tfrobust.study import stacks as stacks_lib
from tfrobust.study import tuner as tuner_lib

STUDY_METRICS = (("final/test/accuracy", "clean test accuracy"),
                 ("study/adv_accuracy", "adversarial accuracy at report_eps"),
                 ("study/top_eigenvalue", "top Hessian eigenvalue"),
                 ("final/train/loss", "train loss"))
ERROR_TRACEBACK_FRAMES = 8  # of a failed trial's traceback, kept in its results.jsonl line


class Study:
  """Runs grid points with shared data, strategy and compiled functions; records each in results.jsonl."""

  def __init__(self, grid, experiment, sweep_dir, *, strategy=None, dataset=None, report_eps=None,
               progress=True, trial_progress=False, look=None):
    self.grid, self.experiment, self.sweep_dir, self.look = grid, experiment, sweep_dir, look
    self.report_eps, self.progress, self.trial_progress = report_eps, progress, trial_progress
    self._strategy = strategy
    self._dataset = dataset
    self.cache = run_lib.TrainerCache()  # shared by the trials and the stacks (study/stacks.py)
    self._stacks = None  # stacks.Stacks (the property stacks)
    self.total = len(grid.points())
    self.done = {}  # trial id -> its standing results.jsonl line: read once, then kept up to date here
    self.refresh()

  def refresh(self):
    """Reads results.jsonl again (other workers of a distributed study append to it too)."""
    self.done = dict(sweep_records.read_lines(self.sweep_dir).by_id)

  @property
  def strategy(self):
    if self._strategy is None:
      self._strategy = distribute.make_strategy()
    return self._strategy

  @property
  def dataset(self):
    if self._dataset is None:
      cfg = self.experiment.train
      self._dataset = data_lib.load_dataset(cfg.dataset, cfg.data_dir)
    return self._dataset

  def train_config(self, point):
    """The point's TrainConfig (the grid's budget needs the training-set size)."""
    return self.grid.train_config(point, self.experiment.train, len(self.dataset.x_train))

  def run_point(self, point, tuner_trial_id=None):
    """Trains and evaluates `point` (or finds it recorded); returns its results.jsonl line."""
    existing = self.done.get(point.key)
    if existing is not None:
      return existing
    trial_dir = names.trial_dir(self.sweep_dir, point.key)
    t0 = time.perf_counter()
    train = None
    try:  # everything of the point inside: a dataset or config error is this trial's failure, not the study's
      train = self.train_config(point)
      experiment = dataclasses.replace(self.experiment, train=train)
      extra = self._train_stack(point)
      result = run_lib.run_experiment(
          experiment, trial_dir, strategy=self.strategy, dataset=self.dataset, cache=self.cache,
          progress=self.trial_progress, tensorboard_hparams={"regime": point.regime}, extra=extra)
      line = dict(result, status="ok")
    except Exception as e:  # noqa: BLE001 - one failed point must not stop the study; recorded with its error
      logging.error("trial %s failed: %s", point.key, e)
      hparams = train.hparams() if train is not None else dict(
          self.experiment.train.hparams(), batch_size=point.batch_size, momentum=point.momentum, seed=point.seed)
      line = {"status": "failed", "error": traceback.format_exc(limit=ERROR_TRACEBACK_FRAMES), "hparams": hparams}
    line.update(trial_id=point.key, regime=point.regime, tuner_trial_id=tuner_trial_id,
                wall_s=time.perf_counter() - t0)
    line = sweep_records.append_result(self.sweep_dir, line)
    self.done[point.key] = line
    if line.get("status") == "ok":
      self._write_study_scalars(trial_dir, line)
    self._say(point, line)
    return line

  def with_seeds(self, seeds):
    """This study over `seeds` (another look's), sharing data, strategy and compiled functions (tuner.py)."""
    other = Study(dataclasses.replace(self.grid, seeds=tuple(seeds)), self.experiment, self.sweep_dir,
                  strategy=self._strategy, dataset=self._dataset, report_eps=self.report_eps,
                  progress=self.progress, trial_progress=self.trial_progress)
    other.cache = self.cache
    return other

  @property
  def stacks(self):
    """The study's stacks (study/stacks.py; None with --stack_size=1): formed by the only process or the chief
    once sweep.json is claimed; a distributed worker reads them at its first point, served after they were formed."""
    if self._stacks is None and self.grid.stack_size != 1:
      self._stacks = stacks_lib.Stacks(self, self.grid.stack_size, form_new=not tuner_lib.is_worker())
    return self._stacks

  def _train_stack(self, point):
    """With --stack_size > 1 or auto, trains the point's stack unless done (study/stacks.py); what result.json
    records of it: the stack and the point's share of its times, and the step the stack resumed from."""
    share = self.stacks.prepare(point) if self.stacks is not None else None
    return share and {"stack": share, "resumed_from_step": share["resumed_from_step"]}

  def headline(self, line):
    """(adversarial accuracy, top eigenvalue) of a finished line, chosen by the report's own rule (PGD L∞ at
    report_eps, else the middle of the ε grid), so TensorBoard and the report show the same numbers."""
    return headline(parse_trial(line), self.report_eps)

  def _write_study_scalars(self, trial_dir, line):
    adv, eig = self.headline(line)
    values = {"study/adv_accuracy": adv, "study/top_eigenvalue": eig}
    writer = tf.summary.create_file_writer(os.path.join(trial_dir, names.TENSORBOARD_DIR))
    with writer.as_default(step=line["hparams"]["epochs"]):
      for tag, value in values.items():
        if value is not None:
          tf.summary.scalar(tag, value)
    writer.close()

  def _say(self, point, line):
    if not self.progress:
      return
    done = len(self.done)
    head = f"[{done}/{self.total}] {point.regime} B={point.batch_size} μ={point.momentum:g} seed={point.seed}"
    if line.get("status") != "ok":
      print(f"{head}: FAILED ({(line.get('error') or '').strip().splitlines()[-1][:160]})", flush=True)
      return
    parts = [f"clean {line['metrics']['test/accuracy']:.3f}"]
    adv, eig = self.headline(line)
    if adv is not None:
      parts.append(f"adversarial {adv:.3f}")
    if eig is not None:
      parts.append(f"λmax {eig:.4g}")
    if line.get("diverged"):
      parts.append("DIVERGED")
    print(f"{head}: {', '.join(parts)} ({line.get('wall_s', 0):.1f} s)", flush=True)

  def missing(self):
    return [p for p in self.grid.points() if p.key not in self.done]


def write_hparams_config(sweep_dir, grid, base_hparams):
  """Registers every hyperparameter and metric at the sweep root, so that the HParams dashboard shows (and
  sorts and filters by) all of them, not the few it picks by default."""
  swept = {"regime": hp.Discrete(list(grid.regimes)), "batch_size": hp.Discrete(list(grid.batch_sizes)),
           "momentum": hp.Discrete(list(grid.momenta)), "seed": hp.Discrete(list(grid.seeds))}
  names = ["regime"] + [k for k in base_hparams]
  hparams = [hp.HParam(name, swept.get(name)) for name in dict.fromkeys(names)]
  metrics = [hp.Metric(tag, display_name=name) for tag, name in STUDY_METRICS]
  writer = tf.summary.create_file_writer(sweep_dir)
  with writer.as_default():
    hp.hparams_config(hparams=hparams, metrics=metrics)
  writer.close()


@dataclasses.dataclass(frozen=True)
class StudyOutcome:
  total: int
  failed: list  # trial ids whose trial raised (recorded with the error)
  missing: list  # trial ids not in results.jsonl at the end

  @property
  def complete(self):
    return not self.failed and not self.missing


def run_study(grid, experiment, sweep_dir, *, strategy=None, dataset=None, report_eps=None, progress=True,
              trial_progress=False, sequential=None, look=None):
  """Runs (or resumes) the whole study; a StudyOutcome (None on a distributed worker). Bad input raises
  UsageError before anything is written. sequential: the plan of a --seeds=auto study (its dict, recorded in
  sweep.json instead of the seeds, which grow look by look); look: which look this grid is (1, 2, ...)."""
  experiment.validate()
  grid.validate()
  description = dict(grid.as_dict(), base=experiment.train.hparams(), report_eps=report_eps,
                     epochs=experiment.train.epochs, **evaluators.settings(experiment))
  if sequential is not None:
    description.update(seeds="auto", sequential=sequential)
  for key in ("batch_size", "momentum", "seed", "lr_scaling", "scaled_lr", "max_steps", "budget"):
    description["base"].pop(key)  # per point (budget: the grid's, at the top level)
  study = Study(grid, experiment, sweep_dir, strategy=strategy, dataset=dataset, report_eps=report_eps,
                progress=progress, trial_progress=trial_progress, look=look)
  if not tuner_lib.is_oracle() or grid.budget == "steps":  # before sweep.json: bad input writes nothing
    grid.validate(num_train_examples=len(study.dataset.x_train), base=experiment.train,
                  num_replicas=1 if tuner_lib.is_oracle() else study.strategy.num_replicas_in_sync)
  if not tuner_lib.is_distributed() or tuner_lib.is_oracle():
    sweep_records.claim_sweep_dir(sweep_dir, description)
    write_hparams_config(sweep_dir, grid, experiment.train.hparams())
  if progress and not tuner_lib.is_oracle():
    left = len(study.missing())
    print(f"study: {study.total} points, {study.total - left} already done, {left} to run -> {sweep_dir}",
          flush=True)
  stacks = None if tuner_lib.is_worker() else study.stacks  # formed before any point is served
  tuner = tuner_lib.StudyTuner(study, waits=stacks.waits if stacks is not None else None)
  tuner.search(verbose=0)
  if tuner_lib.is_worker():
    return  # the chief reports; a worker is done when the oracle has nothing left for it
  study.refresh()  # the points other workers finished
  missing = study.missing()
  if missing and not tuner_lib.is_distributed():  # keras-tuner skipped points (#596) or a reload lost them
    logging.warning("keras-tuner left %d points; running them directly", len(missing))
    for point in missing:
      study.run_point(point)
    missing = study.missing()
  done = study.done
  failed = sorted(k for k, line in done.items() if line.get("status") != "ok")
  if missing:
    print(f"study: {len(missing)} of {study.total} points missing (a worker stopped early?): "
          f"{', '.join(p.key for p in missing[:5])}{' ...' if len(missing) > 5 else ''}", flush=True)
  return StudyOutcome(total=study.total, failed=failed, missing=[p.key for p in missing])
