"""Stacks of a study (--stack_size K > 1): the points that share a batch size — the architecture, dataset and budget
are the study's — trained K at a time as one computation (tfrobust.train.stacked), each then handed to the
single-run pipeline (tfrobust.experiment.run) as a finished training: its trial directory gets driver.fit's
checkpoint, history and TensorBoard epoch scalars, and run_experiment resumes it with nothing left to train, then
evaluates and writes it exactly as an unstacked trial. A diverged network resumes at its non-finite step, meets it
again alone and is recorded as diverged there.

Which points form which stack is recorded once (STACKS_FILE) and kept: a rerun after a kill finds the same stacks
and resumes a stack from its own checkpoint (STACKS_DIR/NAME/checkpoints); points added later (the next look of
--seeds=auto) form new stacks. The unit of keras-tuner's work stays the point: the first point of a stack asked
for trains the whole stack, the others find their training done.
"""

import hashlib
import os

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from tfrobust import evaluators
from tfrobust import io
from tfrobust import models
from tfrobust.experiment import run as run_lib
from tfrobust.records import names
from tfrobust.records import run as run_records
from tfrobust.train import stacked_driver
from tfrobust.train.stacked import StackedTrainer

# Beside results.jsonl (their names belong in tfrobust.records.names once the stacked study settles).
STACKS_FILE = "stacks.json"  # {stack name: [trial ids]}, in the order the stacks were formed
STACKS_DIR = "stacks"  # STACKS_DIR/NAME/checkpoints: a stack's own checkpoints and state; NAME/handed_off.json


def form(points, stack_size, recorded, done=()):
  """The stacks `recorded` ({name: [trial ids]}) plus new ones for the points of `points` in none of them and not
  `done`: grouped by batch size, in grid order, `stack_size` at a time. Returns the extended {name: [trial ids]}."""
  stacked = {key for keys in recorded.values() for key in keys}
  out = dict(recorded)
  by_batch = {}
  for p in points:
    if p.key not in stacked and p.key not in done:
      by_batch.setdefault(p.batch_size, []).append(p.key)
  for b, keys in by_batch.items():
    for i in range(0, len(keys), stack_size):
      members = keys[i:i + stack_size]
      digest = hashlib.sha1(",".join(members).encode()).hexdigest()[:10]
      out[f"b{b}-{digest}"] = members
  return out


class Stacks:
  """The study's stacks: formed on first use, trained when the first of their points is asked for."""

  def __init__(self, study, stack_size):
    self.study, self.stack_size = study, stack_size
    path = os.path.join(study.sweep_dir, STACKS_FILE)
    recorded = io.read_json(path) if os.path.exists(path) else {}
    self.members = form(study.grid.points(), stack_size, recorded, done=study.done)
    if self.members != recorded:
      io.write_json(path, self.members)
    self.of = {key: name for name, keys in self.members.items() for key in keys}
    self.shares = {}  # trial id -> the stack it trained in and its share of the stack's times (result.json's "stack")
    self._trainers = {}

  def prepare(self, point):
    """Trains the stack of `point` unless its networks were handed to their trials already; returns what
    result.json records of the stack for this point (None for a point in no stack)."""
    name = self.of.get(point.key)
    if name is None:
      return None
    marker = os.path.join(self.study.sweep_dir, STACKS_DIR, name, "handed_off.json")
    if point.key not in self.shares and not os.path.exists(marker):
      self._train(name)
      io.write_json(marker, {key: self.shares.get(key) for key in self.members[name]})
    if point.key not in self.shares and os.path.exists(marker):
      self.shares[point.key] = io.read_json(marker).get(point.key)
    return self.shares.get(point.key)

  def _train(self, name):
    study = self.study
    points = {p.key: p for p in study.grid.points()}
    members = [points[key] for key in self.members[name]]
    configs = [study.train_config(p) for p in members]
    base = configs[0]
    ds, strategy = study.dataset, study.strategy
    writers = []
    for point, cfg in zip(members, configs):
      trial_dir = names.trial_dir(study.sweep_dir, point.key)
      identity = dict(cfg.hparams(), evaluators=evaluators.settings(study.experiment))
      if not run_lib.check_output_dir(trial_dir, identity):
        os.makedirs(trial_dir, exist_ok=True)
        run_records.write_hparams(trial_dir, identity)
        _hparams_summary(trial_dir, dict(regime=point.regime, **cfg.hparams()), point.key)
      writers.append(tf.summary.create_file_writer(os.path.join(trial_dir, names.TENSORBOARD_DIR)))
    key = (base.model, base.batchnorm, base.batch_size, len(members), base.steps_per_call)
    if key not in self._trainers:
      self._trainers[key] = StackedTrainer(
          lambda: models.build_model(base.model, ds.input_shape, ds.num_classes, batchnorm=base.batchnorm,
                                     stack=len(members)),
          strategy, stack=len(members), global_batch_size=base.batch_size, steps_per_call=base.steps_per_call)
    trainer = self._trainers[key]
    trainer.reset([models.build_model(cfg.model, ds.input_shape, ds.num_classes, batchnorm=cfg.batchnorm,
                                      seed=cfg.seed).get_weights() for cfg in configs])
    results = stacked_driver.fit_stack(
        trainer, ds, configs, checkpoint_dir=os.path.join(study.sweep_dir, STACKS_DIR, name, names.CHECKPOINTS_DIR),
        writers=writers, progress=study.trial_progress)
    for w in writers:
      w.close()
    for k, (point, result) in enumerate(zip(members, results)):
      if point.key in study.done:
        continue
      stacked_driver.write_network_run(trainer, k, result, os.path.join(
          names.trial_dir(study.sweep_dir, point.key), names.CHECKPOINTS_DIR))
      self.shares[point.key] = {"name": name, "size": len(members), "index": k,
                                "resumed_from_step": result.resumed_from_step, "train_s": result.train_s,
                                "epoch_eval_s": result.eval_s, "checkpoint_s": result.checkpoint_s,
                                "summary_s": result.summary_s, "input_setup_s": result.setup_s,
                                "loop_bookkeeping_s": result.bookkeeping_s}


def _hparams_summary(trial_dir, hparams, trial_id):
  """The trial's HParams-dashboard entry, as run_experiment writes it for a fresh run (it finds the stack's trial
  directory holding hparams.json already, so does not)."""
  flat = {k: (",".join(map(str, v)) if isinstance(v, (list, tuple)) else v) for k, v in hparams.items()}
  writer = tf.summary.create_file_writer(os.path.join(trial_dir, names.TENSORBOARD_DIR))
  with writer.as_default():
    hp.hparams({k: v for k, v in flat.items() if v is not None}, trial_id=trial_id)
  writer.close()
