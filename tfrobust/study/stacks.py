"""Stacks of a study (--stack_size=auto, the default, or K > 1): the points that share a batch size — the
architecture, dataset and budget are the study's — trained K at a time as one computation (tfrobust.train.stacked),
each then handed to the single-run pipeline (tfrobust.experiment.run) as a finished training: its trial directory
gets driver.fit's checkpoint, history and TensorBoard epoch scalars, and run_experiment resumes it with nothing left
to train, then evaluates and writes it exactly as an unstacked trial. A diverged network resumes at its non-finite
step, meets it again alone and is recorded as diverged there.

auto: K from --stack_memory_mb (network_bytes per network; at most MAX_AUTO_STACK and the points of that batch
size, split into stacks of even size); on a CPU a network without convolutions trains alone, and so does a point
left alone by the split or already begun alone (a study resumed after the default changed).

Which points form which stack is recorded once (STACKS_FILE) and kept: a rerun after a kill finds the same stacks
and resumes a stack from its own checkpoint (STACKS_DIR/NAME/checkpoints); points added later (the next look of
--seeds=auto) form new stacks. The stacks are formed by the only process, or in a distributed study by the chief
(on its own devices' view: a chief without a GPU trains a network without convolutions alone) before it serves a
trial; workers read them. keras-tuner's trial stays the point: the first point of a stack handed out trains the
whole stack, and the oracle holds the others back (`waits`: one worker at a time trains a stack, again only if
its trial failed) until the stack's networks are handed off
(STACKS_DIR/NAME/handed_off.json); then any worker can take them and finds their training done.
"""

import hashlib
import math
import os

import keras
import numpy as np
import tensorflow as tf

from tfrobust import evaluators
from tfrobust import io
from tfrobust import models
from tfrobust.experiment import run as run_lib
from tfrobust.records import names
from tfrobust.records import run as run_records
from tfrobust.study.grid import AUTO_STACK
from tfrobust.train import stacked_driver
from tfrobust.train.stacked import StackedTrainer

STACKS_FILE, STACKS_DIR = names.STACKS_FILE, names.STACKS_DIR
MAX_AUTO_STACK = 64  # --stack_size=auto never stacks more (the largest K bench/stack_throughput.py measures)
FLOAT_BYTES = 4


def network_bytes(model, batch_size):
  """What one network of a stack holds in memory while it trains at `batch_size` (a plain model, stack=1): its
  weights, momentum buffers and gradients (3 × the parameters), and every layer's output and that output's gradient
  for the batch (2 × B × the activations of one example, the input included), in float32."""
  params = sum(int(np.prod(w.shape)) for w in model.weights)
  activations = sum(int(np.prod(t.shape[1:])) for layer in model.layers for t in _outputs(layer))
  return FLOAT_BYTES * (3 * params + 2 * batch_size * activations)


def _outputs(layer):
  out = layer.output
  return out if isinstance(out, (list, tuple)) else [out]


def auto_stack_size(model, batch_size, memory_mb, points, *, gpu=False):
  """--stack_size=auto at one batch size: as many networks as `memory_mb` MiB holds (network_bytes each), at least
  1, at most `points` (those of that batch size) and MAX_AUTO_STACK. On a CPU a network without convolutions
  trains alone: its step is a few small matmuls, and a stack of them is the same small matmuls batched, which saves
  little of a study (the digits study's 60 MLPs: 0.88-1.09x stacked 12 at a time, 2-core AMD EPYC,
  docs/benchmarks.md); grouped convolutions are what a stack gains from."""
  if not gpu and not any(isinstance(layer, keras.layers.Conv2D) for layer in model.layers):
    return 1
  fits = math.floor(memory_mb * 2 ** 20 / network_bytes(model, batch_size))
  return int(max(1, min(fits, points, MAX_AUTO_STACK)))


def form(points, stack_size, recorded, done=()):
  """The stacks `recorded` ({name: [trial ids]}) plus new ones for the points of `points` in none of them and not
  `done`: grouped by batch size, in grid order, `stack_size` at a time: an int, or (--stack_size=auto) a function of
  the batch size and the number of those points, whose stacks of one are left out (those points train alone).
  Returns the extended {name: [trial ids]}."""
  stacked = {key for keys in recorded.values() for key in keys}
  out = dict(recorded)
  by_batch = {}
  for p in points:
    if p.key not in stacked and p.key not in done:
      by_batch.setdefault(p.batch_size, []).append(p.key)
  for b, keys in by_batch.items():
    size = stack_size
    if callable(stack_size):  # stacks of even size: room for 12 and 13 points is 7 + 6, not 12 + 1
      fits = stack_size(b, len(keys))
      size = math.ceil(len(keys) / math.ceil(len(keys) / fits))
    for i in range(0, len(keys), size):
      members = keys[i:i + size]
      if callable(stack_size) and len(members) == 1:
        continue  # auto: a lone point trains as today, with no stack's checkpoints and hand-off to pay for
      digest = hashlib.sha1(",".join(members).encode()).hexdigest()[:10]
      out[f"b{b}-{digest}"] = members
  return out


class Stacks:
  """The study's stacks: formed by the only process or the chief before the first point is served (read by a
  worker at its first point), trained when the first of their points is asked for."""

  def __init__(self, study, stack_size, *, form_new=True):
    """form_new: form stacks for the points in none (False: a distributed worker, which reads the chief's)."""
    self.study, self.stack_size, self._plain = study, stack_size, None
    path = os.path.join(study.sweep_dir, STACKS_FILE)
    recorded = io.read_json(path) if os.path.exists(path) else {}
    self.members = recorded
    if form_new:
      self._form(path, recorded)
    self.of = {key: name for name, keys in self.members.items() for key in keys}
    self.shares = {}  # trial id -> the stack it trained in and its share of the stack's times (result.json's "stack")
    self._trainers = {}

  def _form(self, path, recorded):
    study = self.study
    # A point whose trial holds a checkpoint but is in no recorded stack began training alone (under --stack_size=1,
    # before a resume): it finishes alone rather than starting again in a stack.
    begun = {p.key for p in study.grid.points() if os.path.exists(
        os.path.join(names.trial_dir(study.sweep_dir, p.key), names.CHECKPOINTS_DIR, "checkpoint"))}
    size = self._auto_size if self.stack_size == AUTO_STACK else self.stack_size
    self.members = form(study.grid.points(), size, recorded, done=set(study.done) | begun)
    if self.members != recorded:
      io.write_json(path, self.members)

  def _auto_size(self, batch_size, points):
    if self._plain is None:  # one plain network, built once: its layers' sizes are what network_bytes counts
      ds, cfg = self.study.dataset, self.study.experiment.train
      self._plain = models.build_model(cfg.model, ds.input_shape, ds.num_classes, batchnorm=cfg.batchnorm)
    return auto_stack_size(self._plain, batch_size, self.study.grid.stack_memory_mb, points,
                           gpu=bool(tf.config.list_physical_devices("GPU")))

  def _marker(self, name):
    return os.path.join(self.study.sweep_dir, STACKS_DIR, name, "handed_off.json")

  def waits(self, key, running):
    """Whether the point `key` must wait: its stack is not handed off yet and a running trial (of the points
    `running`) holds one of its points, which trains it (GridOracle.waits: no two workers train one stack)."""
    name = self.of.get(key)
    return (name is not None and not os.path.exists(self._marker(name))
            and any(self.of.get(k) == name for k in running))

  def prepare(self, point):
    """Trains the stack of `point` unless its networks were handed to their trials already; returns what
    result.json records of the stack for this point (None for a point in no stack)."""
    name = self.of.get(point.key)
    if name is None:
      return None
    marker = self._marker(name)
    if point.key not in self.shares and not os.path.exists(marker):
      self._train(name)
      os.makedirs(os.path.dirname(marker), exist_ok=True)  # a stack whose every network diverged saved nothing
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
    if study.progress:
      print(f"stack {name}: {len(members)} networks of B={base.batch_size} trained as one", flush=True)
    ds, strategy = study.dataset, study.strategy
    writers = []
    for point, cfg in zip(members, configs):
      trial_dir = names.trial_dir(study.sweep_dir, point.key)
      identity = dict(cfg.hparams(), evaluators=evaluators.settings(study.experiment))
      fresh = not run_lib.check_output_dir(trial_dir, identity)
      if fresh:
        os.makedirs(trial_dir, exist_ok=True)
        run_records.write_hparams(trial_dir, identity)
      writers.append(tf.summary.create_file_writer(os.path.join(trial_dir, names.TENSORBOARD_DIR)))
      if fresh:  # the HParams entry run_experiment writes for a fresh run (it finds hparams.json here, so does not)
        run_lib.write_hparams_summary(writers[-1], dict(regime=point.regime, **cfg.hparams()), point.key)
    key = (base.model, base.batchnorm, base.batch_size, len(members), base.steps_per_call)
    if key not in self._trainers:
      self._trainers[key] = StackedTrainer(
          lambda: models.build_model(base.model, ds.input_shape, ds.num_classes, batchnorm=base.batchnorm,
                                     stack=len(members)),
          strategy, stack=len(members), global_batch_size=base.batch_size, steps_per_call=base.steps_per_call)
    trainer = self._trainers[key]
    # The trials' own initial weights, from the study's cache: drawing them again here would build K models, each
    # after keras.utils.set_random_seed, which empties TensorFlow's kernel cache (every attack's first call slow).
    trainer.reset([run_lib.initial_weights(study.cache, cfg, ds, strategy) for cfg in configs])
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
                                "input_teardown_s": result.teardown_s,
                                "loop_bookkeeping_s": result.bookkeeping_s}

