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
- Its L2 step divides the gradient by sqrt(max(1e-12, ‖g‖²)) (`optimize_linear`), so a gradient of norm below 1e-6
  gives a step shorter than asked, and the cross-entropy gradient of a confident natural model is that small:
  (1 − p_y) underflows. Evidence (mnist5k LeNet, 8 epochs, 300 test images): 29% of the examples have
  ‖∇ₓCE‖ < 1e-6 (median 4e-5), and L2 PGD with cleverhans's cross-entropy stalls at 15% accuracy at ε = 3 even with
  100 steps, while the margin loss reaches 0.7%. So the "ce" attack loss here is cross-entropy's log-odds form
  L = logsumexp_{j≠y} z_j − z_y (CE = softplus(L), ∇CE = (1 − p_y)·∇L): per example the same FGSM/PGD step
  direction as cross-entropy, without the vanishing factor (‖∇ₓL‖ ≥ 3.5 on the same images; PGD-20 L2 at ε = 3:
  0.3%). `cross_entropy` (plain) is still what the zero-gradient check measures.
- Called eagerly, each step of cleverhans costs a `tf.function` dispatch of `compute_gradient` plus a dozen eager
  ops, and a new `model_fn` object retraces `compute_gradient`; bench/attack_throughput.py measures it.
"""

import weakref

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
  """Plain cross-entropy per example (what training minimises)."""
  return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def margin(labels, logits):
  """Carlini-Wagner margin max_{j≠y} z_j − z_y: the loss of the deep check (it does not saturate like CE)."""
  return tf.reduce_max(_mask_true(labels, logits), axis=1) - tf.gather(logits, labels, batch_dims=1)


def log_odds(labels, logits):
  """Cross-entropy as the attacks differentiate it: logsumexp_{j≠y} z_j − z_y = softplus⁻¹(CE) (see above)."""
  return tf.reduce_logsumexp(_mask_true(labels, logits), axis=1) - tf.gather(logits, labels, batch_dims=1)


def _mask_true(labels, logits):
  return tf.where(tf.one_hot(labels, tf.shape(logits)[1]) > 0, tf.float32.min, logits)


LOSSES = {"ce": log_odds, "margin": margin}


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


def fgsm(model_fn, x, y, *, eps, norm, loss_fn=log_odds):
  """One step of size ε along the norm's steepest ascent of the loss (Goodfellow et al.), clipped to [0, 1]."""
  return fast_gradient_method(model_fn, x, eps, NORMS[norm], loss_fn=loss_fn, clip_min=0.0, clip_max=1.0,
                              y=y, sanity_checks=False)


def pgd(model_fn, x, y, start, *, eps, norm, steps, step_size, loss_fn=log_odds, backend="cleverhans"):
  """`steps` projected steps of `step_size` from x + `start` (Madry et al.); cleverhans PGD's loop, compiled.

  model_fn: images in [0, 1] -> logits. x: clean images [B, ...] in [0, 1]; y: true integer labels [B].
  start: a perturbation (zeros: no random start), projected into the ε-ball first, as cleverhans does.
  eps, step_size: scalars on the [0, 1] pixel scale in `norm` ("inf" or "2"); step_size ≤ ε as cleverhans
    requires. steps: int scalar (a tensor does not retrace).
  backend: "cleverhans" runs each step as cleverhans does (fast_gradient_method, clip_eta, clip to [0, 1]);
    "fused" takes the same gradient of `loss_fn` and makes the update with one tfrobust.ops.pgd_step_* call
    (the same arithmetic: the same examples to 1e-6).
  """
  ord_ = NORMS[norm]
  adv = tf.clip_by_value(x + clip_eta(start, ord_, eps), 0.0, 1.0)
  if backend == "cleverhans":
    def step(adv):
      adv = fast_gradient_method(model_fn, adv, step_size, ord_, loss_fn=loss_fn, clip_min=0.0, clip_max=1.0,
                                 y=y, sanity_checks=False)
      return tf.clip_by_value(x + clip_eta(adv - x, ord_, eps), 0.0, 1.0)
  elif backend == "fused":
    from tfrobust import ops  # Only this backend needs the op library (or its pure-TF fallback).
    update = ops.pgd_step_linf if norm == "inf" else ops.pgd_step_l2

    def step(adv):
      with tf.GradientTape() as tape:  # cleverhans's compute_gradient: d(sum of per-example losses)/d adv.
        tape.watch(adv)
        value = loss_fn(labels=y, logits=model_fn(adv))
      return update(adv, x, tape.gradient(value, adv), eps=eps, step_size=step_size)
  else:
    raise ValueError(f"backend={backend!r}: choose one of cleverhans, fused")

  steps = tf.convert_to_tensor(steps)
  _, adv = tf.while_loop(lambda i, _: i < steps, lambda i, adv: (i + 1, step(adv)),
                         (tf.constant(0, steps.dtype), adv))
  return adv


def attack_batch(model_fn, x, y, index, *, attack, norm, loss, seed, eps, step_size, steps, restarts,
                 backend="cleverhans"):
  """Adversarial examples for one batch; for PGD the per-example worst case over `restarts` random starts
  (a restart that fools the model if any does, the one with the largest loss among equals).

  attack: "fgsm", "pgd" or "noise" (a random point on the ε-sphere: the baseline an attack must beat).
  eps, step_size: scalars on the [0, 1] scale; steps, restarts: int32 scalars. y: the true labels.
  backend: the PGD step ("cleverhans" or "fused", see `pgd`).
  """
  loss_fn = LOSSES[loss]
  if attack == "fgsm":
    return fgsm(model_fn, x, y, eps=eps, norm=norm, loss_fn=loss_fn)
  if attack == "noise":
    return tf.clip_by_value(x + eps * random_sphere(example_seeds(index, seed, NOISE_STREAM), x, norm=norm), 0., 1.)

  def run(restart):
    start = random_start(example_seeds(index, seed, restart), x, norm=norm, eps=eps)
    adv = pgd(model_fn, x, y, start, eps=eps, norm=norm, steps=steps, step_size=step_size, loss_fn=loss_fn,
              backend=backend)
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


def _connected(logits, images):
  """The logits plus 0·Σ images: the same values, and an input gradient that is zeros instead of None when the
  model is cut off from its input (stop_gradient, tf.round quantisation: the gradient masking the checks must
  report). cleverhans's compute_gradient returns that None, and `optimize_linear` then fails with "Tried to
  convert 'x' to a tensor and failed. Error: None values not supported."."""
  return logits + 0.0 * tf.reduce_sum(images)


def make_attack_step(model, *, attack, norm, loss="ce", strategy=None, return_examples=False,
                     backend="cleverhans"):
  """The compiled attack of one model: `step(iterator, hparams) -> {"index", "correct"[, "x_adv"]}`.

  Built once and reused for every ε and batch: `iterator` yields (x, y, index) batches (a distributed iterator
  when `strategy` has several replicas, each replica attacking its share with `strategy.run`); `hparams` holds
  scalar tensors seed (int64), eps, step_size (float32, [0, 1] scale), steps, restarts (int32), so changing them
  never retraces. The model runs in inference mode and returns logits.
  """
  if backend == "fused":
    from tfrobust import ops
    ops.backend()  # Loads the op library (or picks its fallback) now, not while tracing.

  def model_fn(images):
    return _connected(model(images, training=False), images)

  def replica_step(batch, hparams):
    x, y, index = batch
    adv = attack_batch(model_fn, x, y, index, attack=attack, norm=norm, loss=loss, backend=backend, **hparams)
    out = {"index": index,
           "correct": tf.equal(tf.argmax(model_fn(adv), axis=1, output_type=y.dtype), y)}
    if return_examples:
      out["x_adv"] = adv
    return out

  return _compile(replica_step, strategy)


def make_probe_step(model, *, strategy=None):
  """Clean correctness and whether the input gradient of plain cross-entropy is exactly zero (or below 1e-6,
  where cleverhans's own L2 step would shrink), per example."""
  def replica_step(batch, hparams):
    del hparams
    x, y, index = batch
    with tf.GradientTape() as tape:
      tape.watch(x)
      logits = _connected(model(x, training=False), x)
      value = cross_entropy(y, logits)
    grad = tf.reshape(tape.gradient(value, x), [tf.shape(x)[0], -1])
    return {"index": index,
            "correct": tf.equal(tf.argmax(logits, axis=1, output_type=y.dtype), y),
            "zero_grad": tf.reduce_all(tf.equal(grad, 0.0), axis=1),
            "tiny_grad": tf.norm(grad, axis=1) < 1e-6}

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


# model -> {(attack, norm, loss, return_examples, backend, id(strategy)): (strategy, step)}. A sweep that reuses
# one model object for many trials (pipeline.TrainerCache) traces each attack once, not once per trial: the
# trace (≈ 2 s for FGSM or PGD) would otherwise cost more than the whole digits evaluation.
_COMPILED = weakref.WeakKeyDictionary()


def compiled_step(model, attack, norm, *, loss="ce", strategy=None, return_examples=False, backend="cleverhans"):
  """The compiled step of `model` for this attack ("probe": clean correctness and gradients), built on first
  use and cached for as long as the model lives."""
  steps = _COMPILED.setdefault(model, {})
  key = (attack, norm if attack != "probe" else None, loss, return_examples, backend, id(strategy))
  if key not in steps or steps[key][0] is not strategy:
    weak = _weak_callable(model)  # The cache must not keep the model alive.
    if attack == "probe":
      step = make_probe_step(weak, strategy=strategy)
    else:
      step = make_attack_step(weak, attack=attack, norm=norm, loss=loss, strategy=strategy,
                              return_examples=return_examples, backend=backend)
    steps[key] = (strategy, step)
  return steps[key][1]


def _weak_callable(model):
  ref = weakref.ref(model)

  def call(images, training=False):
    return ref()(images, training=training)
  return call


class Sweeper:
  """Runs compiled attacks of one model over a fixed set of examples, batch by batch, on the strategy.

  Results come back as numpy arrays in example order, whatever the number of replicas or the batch size.
  backend: the PGD step, "cleverhans" or "fused" (see `pgd`).
  """

  def __init__(self, model, x, y, *, batch_size, seed, strategy=None, backend="cleverhans"):
    self._model, self._strategy, self._seed, self._backend = model, strategy, seed, backend
    self._distributed = strategy is not None and strategy.num_replicas_in_sync > 1
    self.num_examples = len(x)
    self.num_batches = -(-len(x) // batch_size)
    index = np.arange(len(x), dtype=np.int64)
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(x, np.float32), np.asarray(y, np.int64), index))
    # No prefetch and no autotuning: the batches are in memory, and tf.data's background threads took a third
    # of the 2 CPU cores from the attack (bench/attack_throughput.py: PGD-20 on 500 MNIST images 4.5 s -> 2.8 s).
    options = tf.data.Options()
    options.autotune.enabled = False
    ds = ds.batch(batch_size).with_options(options)
    self._ds = strategy.experimental_distribute_dataset(ds) if self._distributed else ds

  def step(self, attack, norm, loss="ce", return_examples=False):
    """The compiled step for this attack (cached per model, see `compiled_step`)."""
    return compiled_step(self._model, attack, norm, loss=loss, strategy=self._strategy,
                         return_examples=return_examples, backend=self._backend)

  def run(self, attack, norm, *, eps=0.0, step_size=0.0, steps=1, restarts=1, loss="ce", return_examples=False,
          on_batch=None):
    """One pass over the examples: dict of arrays ("correct", ["zero_grad", "tiny_grad" | "x_adv"]) in example
    order.

    attack: "fgsm", "pgd", "noise" or "probe" (clean correctness and zero input gradients).
    eps, step_size: on the [0, 1] pixel scale, in `norm`; steps, restarts: PGD only.
    """
    step = self.step(attack, norm, loss, return_examples)
    hparams = {"seed": tf.constant(self._seed, tf.int64), "eps": tf.constant(eps, tf.float32),
               "step_size": tf.constant(step_size, tf.float32), "steps": tf.constant(steps, tf.int32),
               "restarts": tf.constant(restarts, tf.int32)}
    iterator, parts = iter(self._ds), []
    for _ in range(self.num_batches):
      parts.append({k: self._to_numpy(v) for k, v in step(iterator, hparams).items()})
      if on_batch is not None:
        on_batch()
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(out.pop("index"), kind="stable")
    return {k: v[order] for k, v in out.items()}

  def _to_numpy(self, value):
    if self._distributed:
      value = self._strategy.gather(value, axis=0)
    return value.numpy()
