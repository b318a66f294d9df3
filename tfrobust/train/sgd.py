"""The SGD update rule and the learning-rate schedule, written out so that they can be tested against formulas.

Update (the PyTorch convention, which Yao et al. and most of the study's anchors use), per variable w with
momentum buffer v (starting at 0), gradient g of the loss averaged over the global batch, learning rate η_t,
momentum μ and weight decay λ:

    d = g + λ·w                      (L2 weight decay enters the gradient, coupled, as in torch.optim.SGD)
    v ← μ·v + d
    w ← w − η_t·v                    (heavy ball)
    w ← w − η_t·(d + μ·v)            (Nesterov, with the new v)

Keras 3's SGD differs (its velocity holds −η·g, so a change of η rescales the past; its weight decay is
decoupled), which is why the rule is hand-written here rather than taken from keras.optimizers.
"""

import math

import numpy as np


def sgd_update(w, v, g, *, lr, momentum, weight_decay, nesterov):
  """One step of the rule above on arrays or tensors; returns (new w, new v). `nesterov` is 0.0 or 1.0."""
  d = g + weight_decay * w
  v = momentum * v + d
  direction = v + nesterov * (d + momentum * v - v)
  return w - lr * direction, v


def learning_rate(step, *, peak_lr, steps_per_epoch, epochs, schedule="constant", warmup_epochs=0.0,
                  decay_epochs=(), decay_factor=0.1, total_steps=None):
  """The learning rate (per SGD step) used at `step` (0-based).

  `peak_lr` is the rate after batch-size scaling. Warm-up rises linearly from peak/W to peak over the first
  W = warmup_epochs·steps_per_epoch steps (Goyal et al. 2017). After it: `constant`; `step` multiplies by
  `decay_factor` at each epoch in `decay_epochs` (the epoch boundary counts, as in Yao et al.'s 60/120/160);
  `cosine` anneals from peak to 0 over the remaining steps. `total_steps` (default epochs·steps_per_epoch)
  is the run's real length in updates, which a steps budget (TrainConfig.max_steps) makes shorter.
  """
  warmup_steps = int(round(warmup_epochs * steps_per_epoch))
  if step < warmup_steps:
    return peak_lr * (step + 1) / warmup_steps
  if schedule == "constant":
    return peak_lr
  if schedule == "step":
    epoch = step / steps_per_epoch
    return peak_lr * decay_factor ** sum(1 for e in decay_epochs if epoch >= e)
  if schedule == "cosine":
    total = (total_steps or epochs * steps_per_epoch) - warmup_steps
    progress = (step - warmup_steps) / max(total, 1)
    return peak_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
  raise ValueError(f"unknown schedule {schedule!r}")


def schedule_from_config(config, steps_per_epoch):
  """`learning_rate` with the run's settings bound: step -> η (spanning max_steps updates when it is set)."""
  def lr_at(step):
    return learning_rate(
        step, peak_lr=config.scaled_lr, steps_per_epoch=steps_per_epoch, epochs=config.epochs,
        schedule=config.lr_schedule, warmup_epochs=config.warmup_epochs,
        decay_epochs=config.lr_decay_epochs, decay_factor=config.lr_decay_factor,
        total_steps=config.max_steps or None)
  return lr_at


def lr_vector(lr_at, start_step, num_steps, length):
  """The rates of `num_steps` steps from `start_step`, zero-padded to `length` (a fixed shape: no retrace)."""
  out = np.zeros(length, np.float32)
  out[:num_steps] = [lr_at(s) for s in range(start_step, start_step + num_steps)]
  return out
