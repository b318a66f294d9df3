"""How training steps are driven: epochs, checkpoints and resume, TensorBoard scalars, progress, NaN guard.

What one step does is `step.py` (it knows nothing of files); this module is where the side effects live.
"""

import dataclasses
import os
import sys
import time
from typing import Optional

import keras
import tensorflow as tf
from absl import logging
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.scalar import summary_v2 as scalar_summary

from tfrobust import data as data_lib
from tfrobust import io
from tfrobust.config import steps_per_epoch
from tfrobust.errors import UsageError
from tfrobust.train import sgd


@dataclasses.dataclass
class FitResult:
  diverged: bool = False
  divergence: Optional[dict] = None
  history: list = dataclasses.field(default_factory=list)
  train_s: float = 0.0
  eval_s: float = 0.0  # the per-epoch evaluations: the test set, and the whole training set under a loss target
  checkpoint_s: float = 0.0  # checkpoints and the history file beside them
  summary_s: float = 0.0  # TensorBoard scalars and the per-epoch progress line
  setup_s: float = 0.0  # the checkpoint restore and the input pipeline, before the first step
  teardown_s: float = 0.0  # the input pipeline's iterator closed after the last step (its prefetch threads stopped)
  bookkeeping_s: float = 0.0  # the loop between compiled calls: learning rates, running sums, the step counter
  resumed_from_step: int = 0
  steps: int = 0  # SGD updates done in all (the step a diverged run stopped before, for it)
  reached_target: Optional[bool] = None  # the loss budget: stopped at the target (False: at the cap); None: no target


HISTORY_FILE = "history.json"  # beside the checkpoints: a resumed run keeps the epochs done before the kill
# Checkpoints kept: the newest and one before it, the fallback when the newest is torn by a kill mid-write.
CHECKPOINTS_KEPT = 2
# The running sums of the current epoch, kept in the checkpoint so that a resumed epoch reports the same means:
# slots of `epoch_sums`.
LOSS_SUM, CORRECT, EXAMPLES, GRAD_NORM_SUM = range(4)
EPOCH_SUM_SLOTS = 4
# The loss budget's measure, in an epoch's history entry: cross-entropy (nats) and accuracy over the whole training
# set in inference mode at the epoch's end, the weights fixed (the running train/loss averages over weights that
# moved during the epoch, and over dropped-out units where a model has them).
WHOLE_SET_LOSS, WHOLE_SET_ACCURACY = "train/whole_set_loss", "train/whole_set_accuracy"


class CheckpointCorrupt(UsageError):
  """Every checkpoint in the directory failed to load (reported as one line, exit 2)."""


def make_checkpoint(trainer):
  """The state that resume restores: weights, momentum buffers, step and the epoch's running sums."""
  step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
  epoch_sums = tf.Variable(tf.zeros(EPOCH_SUM_SLOTS, tf.float64), trainable=False, name="epoch_sums")
  ckpt = tf.train.Checkpoint(weights=[v.value for v in trainer.model.variables],
                             momentum=trainer.momentum_buffers, step=step, epoch_sums=epoch_sums)
  return ckpt, step, epoch_sums


def restore_latest(ckpt, manager):
  """Restores the newest readable checkpoint, falling back to older ones; returns its path or None."""
  for path in reversed(manager.checkpoints):
    try:
      ckpt.restore(path).assert_existing_objects_matched()
      return path
    except Exception as e:  # noqa: BLE001 - truncated files raise IndexError, DataLossError, ValueError, ...
      logging.warning("checkpoint %s unreadable (%s); trying an older one", path, type(e).__name__)
  if manager.checkpoints:
    raise CheckpointCorrupt(f"--output_dir: no readable checkpoint in {manager.directory}; "
                            "delete that directory to start the run again")
  return None


def _read_history(checkpoint_dir, step):
  """The history entries of the epochs that the restored checkpoint (at `step`) had finished."""
  path = os.path.join(checkpoint_dir, HISTORY_FILE)
  if not os.path.exists(path):
    return []
  return [r for r in io.read_json(path) if r.get("steps", step + 1) <= step]


def target_reached(history, step, target):
  """Whether the loss budget's run is over at `step`: the epoch that ended there measured a whole-training-set loss
  at or below `target` nats. Read from the history, so that a run killed after its final checkpoint (and before
  its result) resumes to stop where it stopped, and does not train on."""
  last = history[-1] if history else None
  return bool(target and last is not None and last.get("steps") == step and WHOLE_SET_LOSS in last
              and last[WHOLE_SET_LOSS] <= target)


def fit(trainer, dataset, config, *, checkpoint_dir, writer=None, progress=True):
  """Trains `trainer.model` on `dataset` as `config` says, resuming from `checkpoint_dir` if it holds a run.

  The run is config.epochs epochs, or exactly config.max_steps updates when that is set (a steps budget): the
  last epoch is then partial, and still gets its history entry and checkpoint. With config.target_train_loss (the
  loss budget) every epoch's end also measures the loss over the whole training set, and the run stops at the
  first epoch at or below the target, config.epochs being the cap. `progress`: one plain line per
  epoch, plus a keras Progbar only when stdout is a terminal (its redraws would fill a log file).
  """
  t_setup = time.perf_counter()
  spe = steps_per_epoch(len(dataset.x_train), config.batch_size)
  total_steps = config.max_steps or spe * config.epochs
  lr_at = sgd.schedule_from_config(config, spe)

  ckpt, step_var, epoch_sums = make_checkpoint(trainer)
  manager = tf.train.CheckpointManager(ckpt, checkpoint_dir, max_to_keep=CHECKPOINTS_KEPT)
  result = FitResult()
  if restore_latest(ckpt, manager):
    result.resumed_from_step = int(step_var.numpy())
    result.history = _read_history(checkpoint_dir, result.resumed_from_step)
    logging.info("resumed from step %d of %d", result.resumed_from_step, total_steps)
  step = int(step_var.numpy())
  target = config.target_train_loss
  reached = target_reached(result.history, step, target)

  stream = iterator = None  # a run whose training is over (resumed at its end, as a stack's network is) needs none
  if step < total_steps and not reached:  # ~0.1 s to build under a MirroredStrategy
    stream = data_lib.training_stream(dataset.x_train, dataset.y_train, config.batch_size,
                                      seed=config.seed, epochs=config.epochs, start_step=step,
                                      augment=config.augment)
    iterator = iter(trainer.strategy.experimental_distribute_dataset(stream))
  bar = None
  show_bar = progress and sys.stdout.isatty()
  epoch_start = last_checkpoint = time.perf_counter()
  result.setup_s = epoch_start - t_setup
  epoch_train_s = 0.0
  while step < total_steps and not reached:
    epoch = step // spe
    epoch_steps = min(spe, total_steps - epoch * spe)  # the last epoch of a steps budget may be partial
    if show_bar and bar is None:
      bar = keras.utils.Progbar(epoch_steps, stateful_metrics=["loss", "accuracy"], verbose=1)
      print(f"epoch {epoch + 1}/{config.epochs}")
    num = min(config.steps_per_call, epoch_steps - step % spe)
    if config.checkpoint_every_steps:
      num = min(num, config.checkpoint_every_steps - step % config.checkpoint_every_steps)
    lrs = sgd.lr_vector(lr_at, step, num, config.steps_per_call)
    t0 = time.perf_counter()
    out = trainer.run_steps(iterator, lrs, num, momentum=config.momentum,
                            weight_decay=config.weight_decay, nesterov=config.nesterov)
    epoch_train_s += time.perf_counter() - t0
    if out["first_nonfinite"] >= 0:
      bad_step = step + int(out["first_nonfinite"])
      result.diverged = True
      result.divergence = {"step": bad_step, "epoch": bad_step // spe, "lr": lr_at(bad_step),
                           "grad_norm": float(out["last_grad_norm"]), "weight_norm": trainer.weight_norm()}
      logging.warning("loss became non-finite at step %d (lr %.4g, grad norm %s, weight norm %s): "
                      "stopping, recorded as diverged", bad_step, lr_at(bad_step),
                      result.divergence["grad_norm"], result.divergence["weight_norm"])
      break
    add = [0.0] * EPOCH_SUM_SLOTS
    add[LOSS_SUM], add[CORRECT], add[EXAMPLES], add[GRAD_NORM_SUM] = (
        out["loss_sum"], out["correct"], num * config.batch_size, out["grad_norm_sum"])
    epoch_sums.assign_add(add)
    step += num
    step_var.assign(step)
    sums = epoch_sums.numpy()
    if bar is not None:
      bar.update(step - epoch * spe, values=[("loss", sums[LOSS_SUM] / sums[EXAMPLES]),
                                             ("accuracy", sums[CORRECT] / sums[EXAMPLES])])
    if step == epoch * spe + epoch_steps:
      result.train_s += epoch_train_s
      record = epoch_record(sums, epoch=epoch + 1, lr=lr_at(step - 1), train_s=epoch_train_s,
                            wall_s=time.perf_counter() - epoch_start, epoch_steps=epoch_steps, steps=step)
      if target:
        t0 = time.perf_counter()
        record[WHOLE_SET_LOSS], record[WHOLE_SET_ACCURACY] = trainer.loss_and_accuracy(
            dataset.x_train, dataset.y_train, config.eval_batch_size)
        result.eval_s += time.perf_counter() - t0
        reached = target_reached([record], step, target)
      if config.epoch_test_eval:
        t0 = time.perf_counter()
        record["test/loss"], record["test/accuracy"] = trainer.loss_and_accuracy(
            dataset.x_test, dataset.y_test, config.eval_batch_size)
        result.eval_s += time.perf_counter() - t0
      result.history.append(record)
      t0 = time.perf_counter()
      report_epoch(record, config.epochs, writer, progress)
      result.summary_s += time.perf_counter() - t0
      epoch_sums.assign(tf.zeros(EPOCH_SUM_SLOTS, tf.float64))
      due = time.perf_counter() - last_checkpoint >= config.checkpoint_every_s
      if due or step == total_steps or reached:
        t0 = time.perf_counter()
        _save(manager, checkpoint_dir, result.history, step)
        result.checkpoint_s += time.perf_counter() - t0
        last_checkpoint = time.perf_counter()
      bar = None
      epoch_start = time.perf_counter()
      epoch_train_s = 0.0
    elif config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0:
      t0 = time.perf_counter()
      manager.save(checkpoint_number=step)
      result.checkpoint_s += time.perf_counter() - t0
  result.steps = step
  result.reached_target = reached if target else None
  result.bookkeeping_s = (time.perf_counter() - t_setup - result.setup_s - result.train_s - result.eval_s
                          - result.checkpoint_s - result.summary_s)
  t0 = time.perf_counter()
  del iterator, stream  # here, timed, rather than unnamed at the return
  result.teardown_s = time.perf_counter() - t0
  return result


def _save(manager, checkpoint_dir, history, step):
  """The history file, then the checkpoint: _read_history drops an entry that a kill between the two left newer
  than the checkpoint, so a resumed run replays those epochs and writes their entries again."""
  os.makedirs(checkpoint_dir, exist_ok=True)
  io.write_json(os.path.join(checkpoint_dir, HISTORY_FILE), history)
  manager.save(checkpoint_number=step)


def epoch_record(sums, *, epoch, lr, train_s, wall_s, epoch_steps, steps):
  """One epoch's history entry from its running sums (`epoch_steps`: the steps it made; `steps`: all so far)."""
  return {"epoch": epoch, "train/loss": sums[LOSS_SUM] / sums[EXAMPLES],
          "train/accuracy": sums[CORRECT] / sums[EXAMPLES], "train/learning_rate": lr,
          "train/grad_norm": sums[GRAD_NORM_SUM] / epoch_steps,
          "train/images_per_s": sums[EXAMPLES] / max(train_s, 1e-9), "epoch_s": wall_s, "steps": steps,
          "epoch_steps": epoch_steps}


def report_epoch(record, epochs, writer, progress):
  """The epoch as one printed line and as TensorBoard scalars (every key but the counters), written as one summary
  of the values tf.summary.scalar would write one by one: eagerly, each call cost ~0.3 ms, 5% of the digits study."""
  if progress:
    test = (f" | test loss {record['test/loss']:.4f} acc {record['test/accuracy']:.4f}"
            if "test/loss" in record else "")
    if WHOLE_SET_LOSS in record:
      test += f" | whole training set loss {record[WHOLE_SET_LOSS]:.4f}"
    print(f"epoch {record['epoch']}/{epochs}: loss {record['train/loss']:.4f} acc {record['train/accuracy']:.4f}"
          f"{test} | lr {record['train/learning_rate']:.4g} | {record['train/images_per_s']:,.0f} img/s", flush=True)
  if writer is not None:
    summary = summary_pb2.Summary()
    for key, value in record.items():
      if key not in ("epoch", "steps", "epoch_steps"):
        summary.value.extend(scalar_summary.scalar_pb(key, value).value)
    with writer.as_default(step=record["epoch"]):
      tf.summary.experimental.write_raw_pb(summary.SerializeToString())
    writer.flush()
