"""How a stack's steps are driven: epochs, each network's history, divergence and loss target, checkpoints and
resume — `driver.fit` for K networks trained as one (stacked.py).

Each network gets the FitResult that `driver.fit` would give it alone: its history entries (the same keys), its
divergence (the step, learning rate, gradient norm and weight norm where its loss turned non-finite; it takes no
update from there on, the others go on), its loss target (reached at an epoch's end: it stops there and its
steps are that epoch's end). Timings are the stack's, divided by K: each network's share, so that they add up
over a study to the time it took.
"""

import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from tfrobust import io
from tfrobust.config import steps_per_epoch
from tfrobust.train import driver
from tfrobust.train import sgd
from tfrobust.train import stacked_data

STATE_FILE = "stack_state.json"  # beside the checkpoints: each network's history, divergence and steps
# What every network of a stack shares (the rest, e.g. seed, learning rate, momentum, may differ per network).
SHARED = ("dataset", "model", "batchnorm", "batch_size", "epochs", "max_steps", "target_train_loss", "augment",
          "steps_per_call", "checkpoint_every_steps", "checkpoint_every_s", "epoch_test_eval", "eval_batch_size")


def check_stackable(configs):
  """Raises ValueError unless the TrainConfigs can train as one stack (the fields of SHARED agree)."""
  for field in SHARED:
    values = {getattr(c, field) for c in configs}
    if len(values) > 1:
      raise ValueError(f"a stack's networks must share {field}; got {sorted(map(str, values))}")


def _make_checkpoint(trainer):
  step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
  epoch_sums = tf.Variable(tf.zeros([trainer.stack, driver.EPOCH_SUM_SLOTS], tf.float64), trainable=False,
                           name="epoch_sums")
  ckpt = tf.train.Checkpoint(weights=[v.value for v in trainer.model.variables],
                             momentum=trainer.momentum_buffers, step=step, epoch_sums=epoch_sums)
  return ckpt, step, epoch_sums


def _restore_state(checkpoint_dir, step, results):
  """Each network's history, divergence and steps as the checkpoint at `step` had them (entries written after it,
  by a run killed between the state file and the checkpoint, are dropped and replayed)."""
  path = os.path.join(checkpoint_dir, STATE_FILE)
  if not os.path.exists(path):
    return
  for result, saved in zip(results, io.read_json(path)):
    result.history = [r for r in saved["history"] if r["steps"] <= step]
    if saved["divergence"] is not None and saved["divergence"]["step"] < step:
      result.diverged, result.divergence = True, saved["divergence"]
    result.steps = min(saved["steps"], step)


def _save(manager, checkpoint_dir, results, step):
  os.makedirs(checkpoint_dir, exist_ok=True)
  io.write_json(os.path.join(checkpoint_dir, STATE_FILE),
                [{"history": r.history, "divergence": r.divergence, "steps": r.steps} for r in results])
  manager.save(checkpoint_number=step)


def _reached(result, target):
  last = result.history[-1] if result.history else None
  return bool(target and last is not None and driver.WHOLE_SET_LOSS in last and last[driver.WHOLE_SET_LOSS] <= target)


def fit_stack(trainer, dataset, configs, *, checkpoint_dir, writers=None, progress=False):
  """Trains the K networks of `trainer` (a StackedTrainer) as `configs` (one TrainConfig each, stackable) say,
  resuming from `checkpoint_dir` if it holds the stack's run; returns one driver.FitResult per network.

  writers: one TensorBoard writer (or None) per network, which gets that network's epoch scalars.
  """
  check_stackable(configs)
  t_setup = time.perf_counter()
  cfg, k_nets = configs[0], len(configs)
  writers = writers or [None] * k_nets
  spe = steps_per_epoch(len(dataset.x_train), cfg.batch_size)
  total_steps = cfg.max_steps or spe * cfg.epochs
  lr_ats = [sgd.schedule_from_config(c, spe) for c in configs]
  target = cfg.target_train_loss
  hyper = {"momentum": [c.momentum for c in configs], "weight_decay": [c.weight_decay for c in configs],
           "nesterov": [c.nesterov for c in configs]}

  ckpt, step_var, epoch_sums = _make_checkpoint(trainer)
  manager = tf.train.CheckpointManager(ckpt, checkpoint_dir, max_to_keep=driver.CHECKPOINTS_KEPT)
  results = [driver.FitResult() for _ in configs]
  if driver.restore_latest(ckpt, manager):
    _restore_state(checkpoint_dir, int(step_var.numpy()), results)
    for r in results:
      r.resumed_from_step = int(step_var.numpy())
    logging.info("stack of %d resumed from step %d of %d", k_nets, int(step_var.numpy()), total_steps)
  step = int(step_var.numpy())
  active = np.array([not r.diverged and not _reached(r, target) for r in results])
  for r, a in zip(results, active):
    r.steps = step if a else r.steps

  stream = stacked_data.stacked_stream(dataset.x_train, dataset.y_train, cfg.batch_size,
                                       seeds=[c.seed for c in configs], epochs=cfg.epochs, start_step=step,
                                       augment=cfg.augment)
  iterator = iter(trainer.strategy.experimental_distribute_dataset(stream))
  times = dict.fromkeys(("train_s", "eval_s", "checkpoint_s", "summary_s", "teardown_s"), 0.0)
  epoch_start = last_checkpoint = time.perf_counter()
  setup_s = epoch_start - t_setup
  epoch_train_s = 0.0
  while step < total_steps and active.any():
    epoch = step // spe
    epoch_steps = min(spe, total_steps - epoch * spe)
    num = min(cfg.steps_per_call, epoch_steps - step % spe)
    if cfg.checkpoint_every_steps:
      num = min(num, cfg.checkpoint_every_steps - step % cfg.checkpoint_every_steps)
    lrs = np.stack([sgd.lr_vector(lr_at, step, num, cfg.steps_per_call) for lr_at in lr_ats], axis=1)
    t0 = time.perf_counter()
    out = trainer.run_steps(iterator, lrs, num, active=active, **hyper)
    epoch_train_s += time.perf_counter() - t0
    for k in np.flatnonzero(out["first_nonfinite"] >= 0):
      bad = step + int(out["first_nonfinite"][k])
      results[k].diverged, results[k].steps = True, bad
      results[k].divergence = {"step": bad, "epoch": bad // spe, "lr": lr_ats[k](bad),
                               "grad_norm": float(out["stop_grad_norm"][k]),
                               "weight_norm": float(trainer.weight_norms()[k])}
      logging.warning("network %d of the stack: loss became non-finite at step %d: it stops, recorded as "
                      "diverged; the others go on", k, bad)
    sums = np.stack([out["loss_sum"], out["correct"], out["steps"] * cfg.batch_size, out["grad_norm_sum"]], 1)
    epoch_sums.assign_add(_slots(sums))
    active = out["active"].copy()
    step += num
    step_var.assign(step)
    for k in np.flatnonzero(active):
      results[k].steps = step
    if step == epoch * spe + epoch_steps:
      times["train_s"] += epoch_train_s
      _end_epoch(trainer, dataset, cfg, results, active, epoch_sums.numpy(), lr_ats, times, writers, target,
                 epoch=epoch, epoch_steps=epoch_steps, step=step, train_s=epoch_train_s,
                 wall_s=time.perf_counter() - epoch_start, progress=progress)
      epoch_sums.assign(tf.zeros_like(epoch_sums))
      due = time.perf_counter() - last_checkpoint >= cfg.checkpoint_every_s
      if due or step == total_steps or not active.any():
        t0 = time.perf_counter()
        _save(manager, checkpoint_dir, results, step)
        times["checkpoint_s"] += time.perf_counter() - t0
        last_checkpoint = time.perf_counter()
      epoch_start, epoch_train_s = time.perf_counter(), 0.0
    elif cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0:
      t0 = time.perf_counter()
      _save(manager, checkpoint_dir, results, step)
      times["checkpoint_s"] += time.perf_counter() - t0
  t0 = time.perf_counter()
  del iterator, stream  # timed here (driver.fit's teardown), not unnamed at the return
  times["teardown_s"] = time.perf_counter() - t0
  total = time.perf_counter() - t_setup
  for r in results:
    r.reached_target = _reached(r, target) if target else None
    for key, value in dict(times, setup_s=setup_s, bookkeeping_s=total - setup_s - sum(times.values())).items():
      setattr(r, key, value / k_nets)
  return results


def _slots(sums):
  """[K, 4] sums (loss, correct, examples, gradient norm) laid out in driver's epoch-sum slots."""
  out = np.zeros((len(sums), driver.EPOCH_SUM_SLOTS))
  for column, slot in enumerate((driver.LOSS_SUM, driver.CORRECT, driver.EXAMPLES, driver.GRAD_NORM_SUM)):
    out[:, slot] = sums[:, column]
  return out


def _end_epoch(trainer, dataset, cfg, results, active, sums, lr_ats, times, writers, target, *, epoch,
               epoch_steps, step, train_s, wall_s, progress):
  """Each network that trained through the epoch gets its history entry (and, under the loss budget, its whole
  training set's loss; at or below the target it stops: `active` is cleared in place)."""
  records = {k: driver.epoch_record(sums[k], epoch=epoch + 1, lr=lr_ats[k](step - 1), train_s=train_s,
                                    wall_s=wall_s, epoch_steps=epoch_steps, steps=step)
             for k in np.flatnonzero(active)}
  t0 = time.perf_counter()
  if target:
    loss, accuracy = trainer.loss_and_accuracy(dataset.x_train, dataset.y_train, cfg.eval_batch_size)
    for k, record in records.items():
      record[driver.WHOLE_SET_LOSS], record[driver.WHOLE_SET_ACCURACY] = float(loss[k]), float(accuracy[k])
      active[k] = loss[k] > target
  if cfg.epoch_test_eval:
    loss, accuracy = trainer.loss_and_accuracy(dataset.x_test, dataset.y_test, cfg.eval_batch_size)
    for k, record in records.items():
      record["test/loss"], record["test/accuracy"] = float(loss[k]), float(accuracy[k])
  times["eval_s"] += time.perf_counter() - t0
  t0 = time.perf_counter()
  for k, record in records.items():
    results[k].history.append(record)
    driver.report_epoch(record, cfg.epochs, writers[k], progress=False)
  if progress:
    print(f"epoch {epoch + 1}/{cfg.epochs}: {len(records)} of {len(results)} networks trained, "
          f"loss {np.mean([r['train/loss'] for r in records.values()]):.4f} (mean), {active.sum()} go on",
          flush=True)
  times["summary_s"] += time.perf_counter() - t0


def write_network_run(trainer, k, result, checkpoint_dir):
  """Network k's state where the stack left it, written as driver.fit's checkpoint and history file: driver.fit on
  `checkpoint_dir` then resumes it as if it had trained alone — with nothing left to train when it finished (its
  epochs, steps or loss target), and at its non-finite step when it diverged, which it meets again there."""
  ckpt = tf.train.Checkpoint(
      weights=[tf.Variable(w) for w in trainer.network_weights(k)],
      momentum=[tf.Variable(m) for m in trainer.network_momentum(k)],
      step=tf.Variable(result.steps, dtype=tf.int64),
      epoch_sums=tf.Variable(tf.zeros(driver.EPOCH_SUM_SLOTS, tf.float64)))  # a stack stops at an epoch's end
  os.makedirs(checkpoint_dir, exist_ok=True)
  io.write_json(os.path.join(checkpoint_dir, driver.HISTORY_FILE), result.history)
  tf.train.CheckpointManager(ckpt, checkpoint_dir, max_to_keep=driver.CHECKPOINTS_KEPT).save(
      checkpoint_number=result.steps)
