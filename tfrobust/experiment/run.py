"""One run end to end: data → model → train (resumable) → export → evaluators → examples.npz and result.json.

Usable from Python (`run_experiment(ExperimentConfig(...), output_dir)`) as well as from `tfrobust.main`.
A `TrainerCache` passed by a study lets runs with the same architecture and batch size reuse one model and
its compiled functions instead of tracing them again. The evaluators are those of tfrobust.evaluators.REGISTRY
that the ExperimentConfig asks for; what they hand back is written by outputs.py. Every file's name and format
is tfrobust.records's.
"""

import gc
import os
import shutil
import tempfile
import time

import tensorflow as tf
from absl import logging
from tensorboard.plugins.hparams import api as hp

from tfrobust import data as data_lib
from tfrobust import distribute
from tfrobust import evaluators
from tfrobust import export
from tfrobust import io
from tfrobust import models
from tfrobust.errors import UsageError
from tfrobust.experiment import outputs
from tfrobust.records import names
from tfrobust.records import run as run_records
from tfrobust.train import driver
from tfrobust.train.step import Trainer


class TrainerCache:
  """Trainers keyed by everything their compiled functions depend on, reused across the runs of a sweep, and one
  model per architecture shared by the trainers of every batch size: the evaluators' compiled functions are
  cached per model object, so a study traces its attacks and Hessian-vector products once per architecture,
  not once per batch size (5 traces of ≈ 3 s each in the digits study)."""

  def __init__(self):
    self._trainers, self._models, self._weights = {}, {}, {}

  def get(self, key, build):
    return _memo(self._trainers, key, build)

  def model(self, key, build):
    return _memo(self._models, key, build)

  def initial_weights(self, key, build):
    """A run's initial weights, drawn once per (architecture, seed). Drawing them builds a model after
    keras.utils.set_random_seed, whose tf.random.set_seed clears TensorFlow's kernel cache: every compiled
    function then runs its first call slowly again (0.3 s more per digits run in the attacks alone)."""
    return _memo(self._weights, key, build)


def _memo(table, key, build):
  if key not in table:
    table[key] = build()
  return table[key]


def check_output_dir(output_dir, hparams):
  """Refuses a directory that holds a run with other hyperparameters, and a path that cannot become a directory
  (a file, or under one: os.makedirs would raise later); True if it holds this run already."""
  existing = os.path.abspath(output_dir)
  while not os.path.exists(existing) and os.path.dirname(existing) != existing:
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise UsageError(f"--output_dir={output_dir}: {existing} exists and is not a directory; choose another")
  previous = run_records.read_hparams(output_dir)
  if previous is None:
    if os.path.isdir(output_dir) and os.listdir(output_dir):
      raise UsageError(f"--output_dir={output_dir}: not empty and holds no tfrobust run; choose another")
    return False
  if previous != io.clean(hparams):
    diff = sorted(k for k in set(previous) | set(hparams) if previous.get(k) != io.clean(hparams).get(k))
    raise UsageError(f"--output_dir={output_dir}: holds a run with different hyperparameters "
                     f"({', '.join(diff)}); choose another directory")
  return True


def _model_fn(cfg, dataset):
  return lambda: models.build_model(cfg.model, dataset.input_shape, dataset.num_classes, batchnorm=cfg.batchnorm,
                                    seed=cfg.seed)


def _architecture(cfg, dataset, strategy):
  return (cfg.model, cfg.batchnorm, dataset.name, dataset.input_shape, dataset.num_classes, id(strategy))


def initial_weights(cache, cfg, dataset, strategy):
  """The run's initial weights (a plain model's get_weights()), drawn once per architecture and seed in `cache`:
  a stack's networks (study/stacks.py) start from the very weights their trials would, without drawing them again."""
  return cache.initial_weights(_architecture(cfg, dataset, strategy) + (cfg.seed,),
                               lambda: _model_fn(cfg, dataset)().get_weights())


def _trainer_for(cfg, dataset, strategy, cache):
  model_fn = _model_fn(cfg, dataset)
  if cache is None:
    return Trainer(model_fn, strategy, global_batch_size=cfg.batch_size,
                   steps_per_call=cfg.steps_per_call, jit_compile=cfg.jit_compile)
  architecture = _architecture(cfg, dataset, strategy)
  shared = lambda: cache.model(architecture, model_fn)  # noqa: E731 (built under the first trainer's scope)
  key = architecture + (cfg.batch_size, cfg.steps_per_call, cfg.jit_compile)
  trainer = cache.get(key, lambda: Trainer(shared, strategy, global_batch_size=cfg.batch_size,
                                           steps_per_call=cfg.steps_per_call, jit_compile=cfg.jit_compile))
  trainer.reset(initial_weights(cache, cfg, dataset, strategy))
  return trainer


class _GcClock:
  """Seconds Python's garbage collector has run in this process: a pause inside any stage of a trial (a full
  collection walks every object of TensorFlow and Keras), which the stage's own timing cannot tell apart. One
  callback for the process; a trial reads the difference."""

  def __init__(self):
    self.seconds, self._start = 0.0, None
    gc.callbacks.append(self._tick)

  def _tick(self, phase, info):
    del info
    if phase == "start":
      self._start = time.perf_counter()
    elif self._start is not None:
      self.seconds += time.perf_counter() - self._start
      self._start = None


_GC = _GcClock()


def write_hparams_summary(writer, hparams, trial_id):
  """The trial's entry in TensorBoard's HParams dashboard (list values joined by commas, None left out)."""
  flat = {k: (",".join(map(str, v)) if isinstance(v, (list, tuple)) else v) for k, v in hparams.items()}
  with writer.as_default():
    hp.hparams({k: v for k, v in flat.items() if v is not None}, trial_id=trial_id)


def run_experiment(experiment, output_dir, *, strategy=None, dataset=None, cache=None, progress=True,
                   extra=None, tensorboard_hparams=None):
  """Runs (or resumes, or finds finished) the run `experiment` in `output_dir`; returns the result dict.

  Bad input raises UsageError before anything is written. `dataset` may be passed to skip loading it again.
  `tensorboard_hparams` adds columns to the HParams dashboard (a sweep's regime) without entering hparams.json.
  """
  t_start = time.perf_counter()
  gc_start = _GC.seconds
  cfg = experiment.validate().train
  sections = evaluators.sections(experiment)
  t0 = time.perf_counter()
  strategy = strategy or distribute.make_strategy()
  strategy_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  dataset = dataset or data_lib.load_dataset(cfg.dataset, cfg.data_dir)
  data_s = time.perf_counter() - t0
  cfg.validate_against(len(dataset.x_train), strategy.num_replicas_in_sync)
  hparams = cfg.hparams()
  chief = distribute.is_chief(strategy)
  # What the evaluators measure is part of the run too: a finished run asked for other attacks or another
  # Hessian setting is refused rather than returned without them.
  run_identity = dict(hparams, evaluators=evaluators.settings(experiment))
  t0 = time.perf_counter()
  if not chief:  # Every worker runs the same collectives; only the chief keeps files.
    output_dir = tempfile.mkdtemp(prefix="tfrobust-worker-")
  if check_output_dir(output_dir, run_identity) and run_records.read_result(output_dir) is not None:
    logging.info("%s already holds the finished run; nothing to do", output_dir)
    return run_records.read_result(output_dir)
  fresh = run_records.read_hparams(output_dir) is None
  os.makedirs(output_dir, exist_ok=True)
  run_records.write_hparams(output_dir, run_identity)  # fsync'ed: a study's writes can make it wait
  output_dir_s = time.perf_counter() - t0
  if cfg.deterministic:
    tf.config.experimental.enable_op_determinism()

  t0 = time.perf_counter()
  trainer = _trainer_for(cfg, dataset, strategy, cache)
  build_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  writer = tf.summary.create_file_writer(os.path.join(output_dir, names.TENSORBOARD_DIR))
  if fresh:
    write_hparams_summary(writer, dict(tensorboard_hparams or {}, **hparams),
                          trial_id=os.path.basename(os.path.normpath(output_dir)))
  hparams_summary_s = time.perf_counter() - t0
  fit = driver.fit(trainer, dataset, cfg, checkpoint_dir=os.path.join(output_dir, names.CHECKPOINTS_DIR),
                   writer=writer, progress=progress)

  t0 = time.perf_counter()
  train_loss, train_acc = trainer.loss_and_accuracy(dataset.x_train, dataset.y_train, cfg.eval_batch_size)
  test_loss, test_acc = trainer.loss_and_accuracy(dataset.x_test, dataset.y_test, cfg.eval_batch_size)
  final_eval_s = time.perf_counter() - t0
  result = {
      "hparams": hparams,
      "data": {"dataset": dataset.name, "num_classes": dataset.num_classes, "train_examples": len(dataset.x_train),
               "test_examples": len(dataset.x_test)},
      "metrics": {"train/loss": train_loss, "train/accuracy": train_acc,  # the whole sets, at the end
                  "test/loss": test_loss, "test/accuracy": test_acc},
      "diverged": fit.diverged, "divergence": fit.divergence,
      "history": fit.history, "steps": fit.steps, "resumed_from_step": fit.resumed_from_step,
      "num_replicas": strategy.num_replicas_in_sync, "saved_model": None,
      "timings": {"strategy_s": strategy_s, "data_s": data_s, "build_s": build_s, "train_s": fit.train_s, "epoch_eval_s": fit.eval_s,
                  "input_setup_s": fit.setup_s, "input_teardown_s": fit.teardown_s,
                  "loop_bookkeeping_s": fit.bookkeeping_s,
                  "checkpoint_s": fit.checkpoint_s, "summary_s": fit.summary_s + hparams_summary_s, "final_eval_s": final_eval_s,
                  "output_dir_s": output_dir_s},
      "versions": io.versions(),
  }
  result.update(extra or {})
  evaluations = {}
  if not fit.diverged:
    if experiment.export_saved_model:
      t0 = time.perf_counter()
      saved = os.path.join(output_dir, names.SAVED_MODEL_DIR)
      export.export_model(trainer.model, saved)
      result["saved_model"] = os.path.abspath(saved)
      result["timings"]["export_s"] = time.perf_counter() - t0
    for evaluator, section in sections:
      t0 = time.perf_counter()
      evaluations[evaluator.name] = evaluator.evaluate(trainer.model, dataset, section, strategy=strategy,
                                                       progress=progress)
      result["timings"][f"{evaluator.name}_s"] = time.perf_counter() - t0
    result.update(outputs.sections(evaluations))
  t0 = time.perf_counter()
  if chief:
    outputs.write_figures(evaluations, output_dir)
    outputs.write_tensorboard(evaluations, writer)
    if not fit.diverged:
      clean = outputs.clean_correct(trainer.model, dataset.x_test, dataset.y_test, cfg.eval_batch_size)
      outputs.write_examples(evaluations, output_dir, clean)
  with writer.as_default(step=cfg.epochs):
    for key, value in result["metrics"].items():
      tf.summary.scalar("final/" + key, value)
  writer.flush()
  result["timings"]["write_s"] = time.perf_counter() - t0
  timings = result["timings"]
  timings["total_s"] = time.perf_counter() - t_start
  # What no stage above names (the strategy, the output directory's checks, the result's own write): small by
  # design; a large value here is an overhead to find.
  timings["other_s"] = timings["total_s"] - sum(v for k, v in timings.items() if k != "total_s")
  timings["of_which_gc_s"] = _GC.seconds - gc_start  # garbage collection, inside the stages above (not added)
  run_records.write_result(output_dir, result)
  if not chief:
    shutil.rmtree(output_dir, ignore_errors=True)
  return result
