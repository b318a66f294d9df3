"""Compiled SGD steps for K networks stacked in one model (`models.build_model(..., stack=K)`): each network its
own learning rate, momentum, weight decay and Nesterov switch ([K] tensors), its own batch (stacked_data.py), loss,
accuracy and gradient norm, and its own stop.

The loss differentiated is the sum of the K networks' losses, each averaged over the global batch. The networks
share no weight, so the gradient of the sum in network k's weights is the gradient of network k's own loss, and
network k's update is the one `step.Trainer` makes for it alone (`sgd.sgd_update`, element by element, with its
own hyperparameters). A network whose loss or gradient norm turns non-finite takes no update from that step on,
nor does one that the driver stops (the loss budget's target reached): `active` is False for it, and its weights,
momentum and BatchNorm statistics stay as they were while the others train on. Nothing here knows about files
(stacked_driver.py).
"""

import numpy as np
import tensorflow as tf

from tfrobust import models
from tfrobust.losses import cross_entropy
from tfrobust.train import sgd


def _correct(labels, logits):
  return tf.cast(tf.equal(tf.argmax(logits, -1, output_type=labels.dtype), labels), tf.float32)


@tf.function(jit_compile=True, reduce_retracing=True)
def _masked_update(w, v, g, lr, momentum, weight_decay, nesterov, keep):
  """`sgd.sgd_update` where `keep`, else w and v as they were (a select, not a product: NaN times 0 is NaN); [K, 1]
  hyperparameters. Compiled by XLA into one pass over the variable: a stack's variables are K times a network's and
  no longer fit the cache, and the ~10 elementwise ops of the rule, each its own pass, took 60% of a stacked MLP's
  step (K = 16, B = 16) — more than the forward and backward passes."""
  new_w, new_v = sgd.sgd_update(w, v, g, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
  return tf.where(keep, new_w, w), tf.where(keep, new_v, v)


class StackedTrainer:
  """A stack of K networks, their momentum buffers and the compiled functions that train them and measure each
  one's clean loss. Create under no particular scope; variables are created under `strategy.scope()` here.

  model_fn: builds the stacked model (images [B, H, W, K·C] -> logits [B, K·classes]).
  """

  def __init__(self, model_fn, strategy, *, stack, global_batch_size, steps_per_call):
    self.strategy, self.stack = strategy, stack
    self.global_batch_size, self.steps_per_call = global_batch_size, steps_per_call
    with strategy.scope():
      self.model = model_fn()
      self.momentum_buffers = [
          tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name="momentum")
          for v in self.model.trainable_variables]
    self._axes = models.network_axes(self.model, self.model.trainable_variables)
    # BatchNorm's moving statistics (block k: network k's), put back for the networks that took no update.
    self._statistics = list(self.model.non_trainable_variables)
    self.train_steps = tf.function(self._train_steps)
    self.loss_and_correct = tf.function(self._loss_and_correct, reduce_retracing=True)

  def _view(self, t, axis):
    """`t` (a variable of the stack or its gradient) reshaped so that [K, 1] per-network values broadcast over
    network k's part: [K, rest] where the network axis is the first (0), [rest, K, n] where it is the last (-1);
    one shared [K, 1] per hyperparameter, not one expansion per variable (tf.repeat is ~15 ops)."""
    if axis == 0:
      return tf.reshape(t, [self.stack, -1])
    return tf.reshape(t, [-1, self.stack, t.shape[-1] // self.stack])

  def _squares_per_network(self, g, axis):
    """[K]: the sum of squares of network k's part of `g`."""
    if axis == 0:
      return tf.reduce_sum(tf.reshape(tf.square(g), [self.stack, -1]), axis=1)
    return tf.reduce_sum(tf.reshape(tf.square(g), [-1, self.stack, g.shape[-1] // self.stack]), axis=[0, 2])

  # ----- replica context -----
  def _loss_and_grads(self, x, y):
    with tf.GradientTape() as tape:
      logits = tf.reshape(self.model(x, training=True), [tf.shape(x)[0], self.stack, -1])
      per_example = cross_entropy(y, logits)  # [b, K]
      loss = tf.reduce_sum(per_example) / self.global_batch_size  # each network's mean over the *global* batch
    grads = tape.gradient(loss, self.model.trainable_variables)
    return grads, tf.reduce_sum(per_example, axis=0), tf.reduce_sum(_correct(y, logits), axis=0)

  def _apply(self, strategy, grads, statistics, lr, momentum, weight_decay, nesterov, update):
    """Cross-replica: `sgd.sgd_update` per network on each device's copy of each variable, where `update`."""
    columns = {}

    def column(values, dtype):  # [K] -> [K, 1] in the variable's dtype (float32 hyperparameters, float64 tests)
      if (id(values), dtype) not in columns:
        columns[id(values), dtype] = tf.reshape(tf.cast(values, dtype), [self.stack, 1])
      return columns[id(values), dtype]

    def step(var, grad, buffer, update, axis):
      w, g, v = self._view(var, axis), self._view(grad, axis), self._view(buffer, axis)
      new_w, new_v = _masked_update(w, v, g, column(lr, var.dtype), column(momentum, var.dtype),
                                    column(weight_decay, var.dtype), column(nesterov, var.dtype),
                                    tf.reshape(update, [self.stack, 1]))
      buffer.assign(tf.reshape(new_v, var.shape))
      return var.assign(tf.reshape(new_w, var.shape))
    for var, grad, buffer, axis in zip(self.model.trainable_variables, grads, self.momentum_buffers, self._axes):
      strategy.extended.update(var.value, step, args=(grad, buffer, update, axis), group=False)

    def restore(var, before, update):
      keep = tf.reshape(update, [self.stack, 1])
      return var.assign(tf.reshape(tf.where(keep, self._view(var, -1), self._view(before, -1)), var.shape))
    for var, before in zip(self._statistics, statistics):
      strategy.extended.update(var.value, restore, args=(before, update), group=False)

  def _step(self, x, y, lr, momentum, weight_decay, nesterov, active):
    statistics = [tf.identity(v.value) for v in self._statistics]  # before the forward pass moves them
    grads, loss_sum, correct = self._loss_and_grads(x, y)
    ctx = tf.distribute.get_replica_context()
    reduced = ctx.all_reduce(tf.distribute.ReduceOp.SUM, list(grads) + [loss_sum, correct])
    grads, loss_sum, correct = reduced[:-2], reduced[-2], reduced[-1]
    grad_norm = tf.sqrt(tf.add_n([self._squares_per_network(g, a) for g, a in zip(grads, self._axes)]))
    update = tf.logical_and(active, tf.math.is_finite(loss_sum + grad_norm))
    ctx.merge_call(self._apply, args=(grads, statistics, lr, momentum, weight_decay, nesterov, update))
    return tf.cast(loss_sum, tf.float32), tf.cast(correct, tf.float32), tf.cast(grad_norm, tf.float32), update

  # ----- cross-replica, compiled -----
  def _train_steps(self, iterator, lrs, num_steps, momentum, weight_decay, nesterov, active):
    """Runs `num_steps` steps (lrs[i]: the [K] rates of step i) for the networks still `active` ([K] bool).

    Returns [K] tensors: each network's sums over the steps it took (loss, correct, gradient norm), the steps it
    took, the step of this call at which its loss or gradient turned non-finite (-1: none) and the gradient norm
    there, and which networks are still active.
    """
    s = self.strategy
    zeros = tf.zeros([self.stack])
    loss_sum, correct, grad_norm_sum, stop_grad_norm = zeros, zeros, zeros, zeros
    steps = tf.zeros([self.stack], tf.int32)
    first_nonfinite = tf.fill([self.stack], -1)
    for i in tf.range(num_steps):
      if not tf.reduce_any(active):
        break
      x, y = next(iterator)
      out = s.run(self._step, args=(x, y, lrs[i], momentum, weight_decay, nesterov, active))
      step_loss, step_correct, grad_norm, took = [s.experimental_local_results(o)[0] for o in out]
      loss_sum += tf.where(took, step_loss, 0.0)
      correct += tf.where(took, step_correct, 0.0)
      grad_norm_sum += tf.where(took, grad_norm, 0.0)
      steps += tf.cast(took, tf.int32)
      stopped = tf.logical_and(active, tf.logical_not(took))
      first_nonfinite = tf.where(stopped, i, first_nonfinite)
      stop_grad_norm = tf.where(stopped, grad_norm, stop_grad_norm)
      active = tf.logical_and(active, took)
    return {"loss_sum": loss_sum, "correct": correct, "grad_norm_sum": grad_norm_sum, "steps": steps,
            "first_nonfinite": first_nonfinite, "stop_grad_norm": stop_grad_norm, "active": active}

  def _loss_and_correct(self, x, y):
    def fn(x, y):
      logits = self.model(tf.tile(x, [1, 1, 1, self.stack]), training=False)  # every network sees the same images
      logits = tf.reshape(logits, [tf.shape(x)[0], self.stack, -1])
      labels = tf.tile(y[:, None], [1, self.stack])
      return (tf.cast(tf.reduce_sum(cross_entropy(labels, logits), axis=0), tf.float32),
              tf.reduce_sum(_correct(labels, logits), axis=0))
    out = self.strategy.run(fn, args=(x, y))
    return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, o, axis=None) for o in out]

  # ----- host side -----
  def run_steps(self, iterator, lrs, num_steps, *, momentum, weight_decay, nesterov, active):
    """Python-friendly front of the compiled steps. lrs: [steps_per_call, K] rates (per SGD step); momentum,
    weight_decay, nesterov, active: one value per network. Every value enters as a tensor (no retrace)."""
    def vec(values):
      return tf.constant(np.asarray(values, np.float32).reshape(self.stack))
    out = self.train_steps(iterator, tf.constant(lrs, tf.float32), tf.constant(num_steps, tf.int32), vec(momentum),
                           vec(weight_decay), vec(np.asarray(nesterov, np.float32)),
                           tf.constant(np.asarray(active, bool).reshape(self.stack)))
    return {k: v.numpy() for k, v in out.items()}

  def loss_and_accuracy(self, x, y, batch_size):
    """Each network's mean cross-entropy and accuracy over all of (x, y), in inference mode: two [K] arrays."""
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    loss = correct = np.zeros(self.stack)
    for xb, yb in self.strategy.experimental_distribute_dataset(ds):
      l, c = self.loss_and_correct(xb, yb)
      loss, correct = loss + l.numpy(), correct + c.numpy()
    return loss / len(x), correct / len(x)

  def reset(self, networks):
    """Loads K networks' fresh weights (each a list as from a plain model's get_weights()) and zeroes the momentum
    buffers."""
    models.stack_weights(self.model, networks)
    for b in self.momentum_buffers:
      b.assign(tf.zeros_like(b))

  def network_weights(self, k):
    """Network k's weights as the list a plain model's set_weights() takes."""
    return models.unstack_weights(self.model, k)

  def network_momentum(self, k):
    """Network k's momentum buffers, in the order of a plain model's trainable variables (step.Trainer's)."""
    out = []
    for buffer, axis in zip(self.momentum_buffers, self._axes):
      b = buffer.numpy()
      n = b.shape[-1] // self.stack
      out.append(b[k] if axis == 0 else b[..., k * n:(k + 1) * n])
    return out

  def weight_norms(self):
    return np.array([np.sqrt(sum(np.sum(np.square(w, dtype=np.float64)) for w in self.network_weights(k)))
                     for k in range(self.stack)])

  def tracing_counts(self):
    return {"train_steps": self.train_steps.experimental_get_tracing_count(),
            "loss_and_correct": self.loss_and_correct.experimental_get_tracing_count()}
