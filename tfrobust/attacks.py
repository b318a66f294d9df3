"""cleverhans FGSM and PGD compiled once per model: ε, step size, steps and restarts enter as tensors.

Units: images on the [0, 1] pixel scale, ε and the PGD step size on that scale, in the attack's norm.

Where cleverhans 4.0.0 (with TF 2.21, Keras 3, numpy 2) is wrong or slow, and what this module does instead:
- `projected_gradient_descent` cannot be compiled with ε as a tensor: its first line, `assert eps_iter <= eps,
  (eps_iter, eps)`, is a Python assert, so inside a `tf.function` it raises OperatorNotAllowedInGraphError
  ("Using a symbolic tf.Tensor as a Python bool"), and AutoGraph's ASSERT_STATEMENTS feature refuses it ("can only
  convert string messages"). With ε as a Python float every ε retraces, and its `while i < nb_iter` with a Python
  int unrolls every step into the graph. So `pgd` below runs cleverhans's own loop body (`fast_gradient_method`
  then `clip_eta`, then clipping to [0, 1]) inside a `tf.while_loop`; tests/test_robustness.py checks that it
  gives exactly what `projected_gradient_descent` gives.
- Its random start (`random_lp_vector`) uses stateful `tf.random` ops without a seed argument, so the start of an
  example depends on the order of the calls and on how a batch is split over replicas. Here the start is a pure
  function of (seed, example index, restart), drawn from the same distribution (uniform in the L∞ box; for L2
  cleverhans's recipe: a Gaussian direction times ε·u^(1/d)), so one and several replicas give the same numbers.
  The same start serves every ε (common random numbers: the accuracy-vs-ε curve is not jagged by resampling).
- `madry_et_al` sets `sanity_checks=True` (crashes with a numpy 2 ValueError) and `rand_minmax=0.3` (a start
  that is not uniform in the ε-ball for ε < 0.3): never used. `sanity_checks` is never set here.
- PGD has no restarts: `attack_batch` runs them and keeps, per example, the first restart that fools the model,
  else the one with the largest loss.
- With `y=None` cleverhans attacks the model's own predictions: the true labels are always passed.
- `fast_gradient_method` casts its input to float32 silently; inputs here are float32 already.
- Called eagerly, each step of cleverhans costs a `tf.function` dispatch of `compute_gradient` plus a dozen eager
  ops, and a new `model_fn` object retraces `compute_gradient`; bench/attack_throughput.py measures it.
"""

import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method
from cleverhans.tf2.utils import clip_eta

NORMS = {"inf": np.inf, "2": 2}
NORM_NAMES = {"inf": "linf", "2": "l2"}
ATTACKS = ("fgsm", "pgd")
_SEED_STRIDE = 1_000_003  # seed pair: (example index, seed * stride + stream); streams never reach the stride.
NOISE_STREAM = 500_000


def cross_entropy(labels, logits):
  return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def margin(labels, logits):
  """Carlini-Wagner margin max_{j≠y} z_j − z_y: the loss of the deep check (it does not saturate like CE)."""
  true = tf.gather(logits, labels, batch_dims=1)
  others = tf.where(tf.one_hot(labels, tf.shape(logits)[1]) > 0, tf.float32.min, logits)
  return tf.reduce_max(others, axis=1) - true


LOSSES = {"ce": cross_entropy, "margin": margin}


def example_seeds(index, seed, stream):
  """Stateless seed pairs [batch, 2]: one per example, independent of batching and replicas."""
  index = tf.cast(index, tf.int64)
  other = tf.cast(seed, tf.int64) * _SEED_STRIDE + tf.cast(stream, tf.int64)
  return tf.stack([index, tf.fill(tf.shape(index), other)], axis=1)


def _per_example(draw, seeds, example_shape):
  return tf.map_fn(lambda s: draw(example_shape, s), seeds, fn_output_signature=tf.float32)


def random_start(seeds, x, *, norm, eps):
  """A point uniform in the ε-ball of `norm` around 0 for each example (cleverhans's distributions)."""
  shape = tf.shape(x)[1:]
  if norm == "inf":
    return eps * _per_example(lambda s, seed: tf.random.stateless_uniform(s, seed, -1.0, 1.0), seeds, shape)
  direction = _per_example(lambda s, seed: tf.random.stateless_normal(s, seed), seeds, shape)
  radius_seeds = seeds + tf.constant([0, 1], tf.int64)  # Another stream for the radius.
  u = _per_example(lambda s, seed: tf.random.stateless_uniform(s, seed), radius_seeds, tf.constant([], tf.int32))
  dim = tf.cast(tf.reduce_prod(shape), tf.float32)
  return eps * _scale(_unit_l2(direction), tf.pow(u, 1.0 / dim))


def random_sphere(seeds, x, *, norm):
  """A random direction of norm exactly 1: random signs (L∞, a corner of the box) or a Gaussian direction (L2)."""
  shape = tf.shape(x)[1:]
  if norm == "inf":
    u = _per_example(lambda s, seed: tf.random.stateless_uniform(s, seed), seeds, shape)
    return tf.where(u < 0.5, -1.0, 1.0)
  return _unit_l2(_per_example(lambda s, seed: tf.random.stateless_normal(s, seed), seeds, shape))


def _scale(v, per_example):
  return v * tf.reshape(per_example, tf.concat([[-1], tf.ones([tf.rank(v) - 1], tf.int32)], 0))


def _per_example_mask(mask, like):
  return tf.reshape(mask, tf.concat([[-1], tf.ones([tf.rank(like) - 1], tf.int32)], 0))


def _unit_l2(v):
  axes = tf.range(1, tf.rank(v))
  return v / tf.sqrt(tf.maximum(1e-12, tf.reduce_sum(tf.square(v), axes, keepdims=True)))


def fgsm(model_fn, x, y, *, eps, norm, loss_fn=cross_entropy):
  """One step of size ε along the norm's steepest ascent of the loss (Goodfellow et al.), clipped to [0, 1]."""
  return fast_gradient_method(model_fn, x, eps, NORMS[norm], loss_fn=loss_fn, clip_min=0.0, clip_max=1.0,
                              y=y, sanity_checks=False)


def pgd(model_fn, x, y, start, *, eps, norm, steps, step_size, loss_fn=cross_entropy):
  """`steps` projected steps of `step_size` from x + `start` (Madry et al.); cleverhans PGD's loop, compiled.

  `start` is a perturbation inside the ε-ball (zeros: no random start); step_size ≤ ε as cleverhans requires.
  """
  ord_ = NORMS[norm]

  def project(adv):
    return tf.clip_by_value(x + clip_eta(adv - x, ord_, eps), 0.0, 1.0)

  def body(i, adv):
    adv = fast_gradient_method(model_fn, adv, step_size, ord_, loss_fn=loss_fn, clip_min=0.0, clip_max=1.0,
                               y=y, sanity_checks=False)
    return i + 1, project(adv)

  adv = project(x + start)
  _, adv = tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0, steps.dtype), adv))
  return adv


def attack_batch(model_fn, x, y, index, *, attack, norm, loss, seed, eps, step_size, steps, restarts):
  """Adversarial examples for one batch; for PGD the per-example worst case over `restarts` random starts
  (a restart that fools the model if any does, the one with the largest loss among equals).

  attack: "fgsm", "pgd" or "noise" (a random point on the ε-sphere: the baseline an attack must beat).
  eps, step_size: scalars on the [0, 1] scale; steps, restarts: int32 scalars. y: the true labels.
  """
  loss_fn = LOSSES[loss]
  if attack == "fgsm":
    return fgsm(model_fn, x, y, eps=eps, norm=norm, loss_fn=loss_fn)
  if attack == "noise":
    return tf.clip_by_value(x + eps * random_sphere(example_seeds(index, seed, NOISE_STREAM), x, norm=norm), 0., 1.)

  def run(restart):
    start = random_start(example_seeds(index, seed, restart), x, norm=norm, eps=eps)
    adv = pgd(model_fn, x, y, start, eps=eps, norm=norm, steps=steps, step_size=step_size, loss_fn=loss_fn)
    logits = model_fn(adv)
    fooled = tf.not_equal(tf.argmax(logits, axis=1, output_type=y.dtype), y)
    return adv, fooled, loss_fn(y, logits)

  def body(r, best, best_fooled, best_loss):
    adv, fooled, value = run(r)
    better = (fooled & ~best_fooled) | ((fooled == best_fooled) & (value > best_loss))
    return (r + 1, tf.where(_per_example_mask(better, x), adv, best), best_fooled | fooled,
            tf.where(better, value, best_loss))

  adv, fooled, value = run(tf.constant(0, restarts.dtype))
  loop = tf.while_loop(lambda r, *_: r < restarts, body, (tf.constant(1, restarts.dtype), adv, fooled, value))
  return loop[1]


def make_attack_step(model, *, attack, norm, loss="ce", strategy=None, return_examples=False):
  """The compiled attack of one model: `step(iterator, hparams) -> {"index", "correct"[, "x_adv"]}`.

  Built once and reused for every ε and batch: `iterator` yields (x, y, index) batches (a distributed iterator
  when `strategy` has several replicas, each replica attacking its share with `strategy.run`); `hparams` holds
  scalar tensors seed (int64), eps, step_size (float32, [0, 1] scale), steps, restarts (int32), so changing them
  never retraces. The model runs in inference mode and returns logits.
  """
  def model_fn(images):
    return model(images, training=False)

  def replica_step(batch, hparams):
    x, y, index = batch
    adv = attack_batch(model_fn, x, y, index, attack=attack, norm=norm, loss=loss, **hparams)
    out = {"index": index,
           "correct": tf.equal(tf.argmax(model_fn(adv), axis=1, output_type=y.dtype), y)}
    if return_examples:
      out["x_adv"] = adv
    return out

  return _compile(replica_step, strategy)


def make_probe_step(model, *, strategy=None):
  """Clean correctness and whether the input gradient of the loss is exactly zero, per example."""
  def replica_step(batch, hparams):
    del hparams
    x, y, index = batch
    with tf.GradientTape() as tape:
      tape.watch(x)
      logits = model(x, training=False)
      value = cross_entropy(y, logits)
    grad = tf.reshape(tape.gradient(value, x), [tf.shape(x)[0], -1])
    return {"index": index,
            "correct": tf.equal(tf.argmax(logits, axis=1, output_type=y.dtype), y),
            "zero_grad": tf.reduce_all(tf.equal(grad, 0.0), axis=1)}

  return _compile(replica_step, strategy)


def _compile(replica_step, strategy):
  distributed = strategy is not None and strategy.num_replicas_in_sync > 1

  @tf.function
  def step(iterator, hparams):
    batch = next(iterator)
    if distributed:
      return strategy.run(replica_step, args=(batch, hparams))
    return replica_step(batch, hparams)

  return step
