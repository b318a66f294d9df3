"""What training steps do: compiled SGD steps and the clean loss and accuracy, under a tf.distribute strategy.

Nothing here knows about checkpoints, summaries or files (that is `driver.py`). A `Trainer` is built once per
(model, strategy, global batch) and can be reset to new weights, so a sweep reuses its compiled functions:
every per-run value (learning rates, momentum, weight decay, Nesterov) enters as a tensor, never as a Python
value that would retrace.
"""

import numpy as np
import tensorflow as tf

from tfrobust.losses import cross_entropy
from tfrobust.train import sgd


def _correct(labels, logits):
  return tf.cast(tf.equal(tf.argmax(logits, -1, output_type=labels.dtype), labels), tf.float32)


class Trainer:
  """A model, its momentum buffers and the compiled functions that train it and measure its clean loss.

  Create under no particular scope; variables are created under `strategy.scope()` here.
  """

  def __init__(self, model_fn, strategy, *, global_batch_size, steps_per_call, jit_compile=False):
    self.strategy = strategy
    self.global_batch_size = global_batch_size
    self.steps_per_call = steps_per_call
    with strategy.scope():
      self.model = model_fn()
      self.momentum_buffers = [
          tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name="momentum")
          for v in self.model.trainable_variables]
    # A nested tf.function is only worth it for XLA; it also breaks synchronized BatchNorm (a merge_call).
    self._grad_fn = (tf.function(self._loss_and_grads, jit_compile=True) if jit_compile
                     else self._loss_and_grads)
    self.train_steps = tf.function(self._train_steps)
    self.loss_and_correct = tf.function(self._loss_and_correct, reduce_retracing=True)

  # ----- replica context -----
  def _loss_and_grads(self, x, y):
    with tf.GradientTape() as tape:
      logits = self.model(x, training=True)
      per_example = cross_entropy(y, logits)
      loss = tf.reduce_sum(per_example) / self.global_batch_size  # mean over the *global* batch
    grads = tape.gradient(loss, self.model.trainable_variables)
    return grads, tf.reduce_sum(per_example), tf.reduce_sum(_correct(y, logits))

  def _apply(self, strategy, grads, lr, momentum, weight_decay, nesterov):
    """Cross-replica: the update of `sgd.sgd_update` on each device's copy of each variable."""
    def update(var, grad, buffer):
      def c(value):  # the hyperparameters enter as float32; a float64 model (tests) takes them in its dtype
        return tf.cast(value, var.dtype)
      new_w, new_v = sgd.sgd_update(var, buffer, grad, lr=c(lr), momentum=c(momentum),
                                    weight_decay=c(weight_decay), nesterov=c(nesterov))
      buffer.assign(new_v)
      return var.assign(new_w)
    for var, grad, buffer in zip(self.model.trainable_variables, grads, self.momentum_buffers):
      strategy.extended.update(var.value, update, args=(grad, buffer), group=False)

  def _step(self, x, y, lr, momentum, weight_decay, nesterov):
    grads, loss_sum, correct = self._grad_fn(x, y)
    ctx = tf.distribute.get_replica_context()
    grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    grad_norm = tf.linalg.global_norm(grads)
    ctx.merge_call(self._apply, args=(grads, lr, momentum, weight_decay, nesterov))
    return [tf.cast(v, tf.float32) for v in (loss_sum, correct, grad_norm)]

  # ----- cross-replica, compiled -----
  def _train_steps(self, iterator, lrs, num_steps, momentum, weight_decay, nesterov):
    """Runs `num_steps` SGD steps (lrs[i] at step i); returns sums over them and the first non-finite step."""
    s = self.strategy
    sum_op = tf.distribute.ReduceOp.SUM
    loss_sum = tf.constant(0.0)
    correct = tf.constant(0.0)
    grad_norm_sum = tf.constant(0.0)
    first_nonfinite = tf.constant(-1)
    for i in tf.range(num_steps):
      x, y = next(iterator)
      out = s.run(self._step, args=(x, y, lrs[i], momentum, weight_decay, nesterov))
      step_loss = s.reduce(sum_op, out[0], axis=None)
      loss_sum += step_loss
      correct += s.reduce(sum_op, out[1], axis=None)
      grad_norm = s.experimental_local_results(out[2])[0]
      grad_norm_sum += grad_norm
      bad = tf.logical_not(tf.math.is_finite(step_loss + grad_norm))
      first_nonfinite = tf.where(tf.logical_and(bad, first_nonfinite < 0), i, first_nonfinite)
    return {"loss_sum": loss_sum, "correct": correct, "grad_norm_sum": grad_norm_sum,
            "first_nonfinite": first_nonfinite, "last_grad_norm": grad_norm}

  def _loss_and_correct(self, x, y):
    def fn(x, y):
      logits = self.model(x, training=False)
      return tf.cast(tf.reduce_sum(cross_entropy(y, logits)), tf.float32), tf.reduce_sum(_correct(y, logits))
    out = self.strategy.run(fn, args=(x, y))
    return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, o, axis=None) for o in out]

  # ----- host side -----
  def run_steps(self, iterator, lrs, num_steps, *, momentum, weight_decay, nesterov):
    """Python-friendly front of the compiled steps; hyperparameters become tensors (no retrace)."""
    out = self.train_steps(iterator, tf.constant(lrs, tf.float32), tf.constant(num_steps, tf.int32),
                           tf.constant(momentum, tf.float32), tf.constant(weight_decay, tf.float32),
                           tf.constant(1.0 if nesterov else 0.0, tf.float32))
    return {k: v.numpy() for k, v in out.items()}

  def loss_and_accuracy(self, x, y, batch_size):
    """Mean cross-entropy and accuracy over all of (x, y), in inference mode."""
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    loss = correct = 0.0
    for xb, yb in self.strategy.experimental_distribute_dataset(ds):
      l, c = self.loss_and_correct(xb, yb)
      loss += float(l)
      correct += float(c)
    return loss / len(x), correct / len(x)

  def reset(self, weights):
    """Loads fresh weights (a list as from `model.get_weights()`) and zeroes the momentum buffers."""
    self.model.set_weights(weights)
    for b in self.momentum_buffers:
      b.assign(tf.zeros_like(b))

  def weight_norm(self):
    return float(np.sqrt(sum(np.sum(np.square(w)) for w in self.model.get_weights())))

  def tracing_counts(self):
    return {"train_steps": self.train_steps.experimental_get_tracing_count(),
            "loss_and_correct": self.loss_and_correct.experimental_get_tracing_count()}
