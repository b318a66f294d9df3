"""The attacks as maths on tensors: cleverhans FGSM and PGD (the PGD loop), their losses, seeded random starts and
the per-example worst case over restarts. Batching, compiling and caching them per model is runner.py.

ε, step size, steps and restarts enter as tensors, so one compiled attack serves every ε and every trial.
Units: images on the [0, 1] pixel scale, ε and the PGD step size on that scale, in the attack's norm.

Where cleverhans 4.0.0 (with TF 2.21, Keras 3, numpy 2) is wrong or slow, and what this module does instead:
- `projected_gradient_descent` cannot be compiled with ε as a tensor: its first line, `assert eps_iter <= eps,
  (eps_iter, eps)`, is a Python assert, so inside a `tf.function` it raises OperatorNotAllowedInGraphError
  ("Using a symbolic tf.Tensor as a Python bool"), and AutoGraph's ASSERT_STATEMENTS feature refuses it ("can only
  convert string messages"). With ε as a Python float every ε retraces, and its `while i < nb_iter` with a Python
  int unrolls every step into the graph. So `pgd` below runs cleverhans's own loop body (`fast_gradient_method`
  then `clip_eta`, then clipping to [0, 1]) inside a `tf.while_loop`; tests/evaluators/robustness/test_attacks.py
  checks that it gives exactly what `projected_gradient_descent` gives.
- Its random start (`random_lp_vector`) uses stateful `tf.random` ops without a seed argument, so the start of an
  example depends on the order of the calls and on how a batch is split over replicas. Here the start is a pure
  function of (seed, example index, restart), drawn from the same distribution (uniform in the L∞ box; for L2
  cleverhans's recipe: a Gaussian direction times ε·u^(1/d)), so one and several replicas give the same numbers.
  The same start serves every ε (common random numbers: the accuracy-vs-ε curve is not jagged by resampling).
- `madry_et_al` sets `sanity_checks=True` (crashes with a numpy 2 ValueError) and `rand_minmax=0.3` (a start
  that is not uniform in the ε-ball for ε < 0.3): never used. `sanity_checks` is never set here.
- PGD has no restarts, and only its last iterate counts: `pgd_until_fooled` runs the restarts side by side
  (rows of one batch, one loop, cleverhans's step) and keeps, per example, the first iterate of any restart that
  fools the model, dropping the example's rows there; else the last iterate of the restart with the largest loss.
- With `y=None` cleverhans attacks the model's own predictions: the true labels are always passed.
- `fast_gradient_method` casts its input to float32 silently; inputs here are float32 already.
- Its L2 step divides the gradient by sqrt(max(1e-12, ‖g‖²)) (`optimize_linear`), so a gradient of norm below 1e-6
  gives a step shorter than asked, and the cross-entropy gradient of a confident natural model is that small:
  (1 − p_y) underflows. Evidence (mnist5k LeNet, 8 epochs, 300 test images): 29% of the examples have
  ‖∇ₓCE‖ < 1e-6 (median 4e-5), and L2 PGD with cleverhans's cross-entropy stalls at 15% accuracy at ε = 3 even with
  100 steps, while the margin loss reaches 0.7%. So the "ce" attack loss here is cross-entropy's log-odds form
  L = logsumexp_{j≠y} z_j − z_y (CE = softplus(L), ∇CE = (1 − p_y)·∇L): per example the same FGSM/PGD step
  direction as cross-entropy, without the vanishing factor (‖∇ₓL‖ ≥ 3.5 on the same images; PGD-20 L2 at ε = 3:
  0.3%). Plain cross-entropy (tfrobust.losses) is still what the zero-gradient check measures.
- Called eagerly, each step of cleverhans costs a `tf.function` dispatch of `compute_gradient` plus a dozen eager
  ops, and a new `model_fn` object retraces `compute_gradient`; bench/attack_throughput.py measures it.
"""

import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method
from cleverhans.tf2.utils import clip_eta, optimize_linear

# cleverhans's `ord` of each norm name of config.NORMS.
ORD = {"inf": np.inf, "2": 2}
_SEED_STRIDE = 1_000_003  # seed pair: (example index, seed * stride + stream); streams never reach the stride.
NOISE_STREAM = 500_000


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
  """Stateless seed pairs [batch, 2]: one per example, independent of batching and replicas. stream: a scalar,
  or one per example."""
  index = tf.cast(index, tf.int64)
  other = tf.cast(seed, tf.int64) * _SEED_STRIDE + tf.cast(stream, tf.int64)
  return tf.stack([index, tf.broadcast_to(other, tf.shape(index))], axis=1)


def misclassified(labels, logits):
  """Per example, whether the logits' top class is not the label."""
  return tf.not_equal(tf.argmax(logits, axis=1, output_type=labels.dtype), labels)


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
  return fast_gradient_method(model_fn, x, eps, ORD[norm], loss_fn=loss_fn, clip_min=0.0, clip_max=1.0,
                              y=y, sanity_checks=False)


def projected_update(norm, *, eps, step_size, backend="cleverhans"):
  """`update(adv, x, grad)`: PGD's next iterate from the loss gradient at adv, cleverhans's arithmetic
  (fast_gradient_method's step `optimize_linear` and clip to [0, 1], then `clip_eta` and clip again) or the same
  in one tfrobust.ops.pgd_step_* call ("fused")."""
  if backend == "fused":
    from tfrobust import ops  # Only this backend needs the op library (or its pure-TF fallback).
    fused = ops.pgd_step_linf if norm == "inf" else ops.pgd_step_l2
    return lambda adv, x, grad: fused(adv, x, grad, eps=eps, step_size=step_size)
  if backend != "cleverhans":
    raise ValueError(f"backend={backend!r}: choose one of cleverhans, fused")
  ord_ = ORD[norm]

  def update(adv, x, grad):
    adv = tf.clip_by_value(adv + optimize_linear(grad, step_size, ord_), 0.0, 1.0)
    return tf.clip_by_value(x + clip_eta(adv - x, ord_, eps), 0.0, 1.0)
  return update


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
  ord_ = ORD[norm]
  adv = tf.clip_by_value(x + clip_eta(start, ord_, eps), 0.0, 1.0)
  update = projected_update(norm, eps=eps, step_size=step_size, backend=backend)
  if backend == "cleverhans":
    def step(adv):
      adv = fast_gradient_method(model_fn, adv, step_size, ord_, loss_fn=loss_fn, clip_min=0.0, clip_max=1.0,
                                 y=y, sanity_checks=False)
      return tf.clip_by_value(x + clip_eta(adv - x, ord_, eps), 0.0, 1.0)
  else:
    def step(adv):
      with tf.GradientTape() as tape:  # cleverhans's compute_gradient: d(sum of per-example losses)/d adv.
        tape.watch(adv)
        value = loss_fn(labels=y, logits=model_fn(adv))
      return update(adv, x, tape.gradient(value, adv))

  steps = tf.convert_to_tensor(steps)
  _, adv = tf.while_loop(lambda i, _: i < steps, lambda i, adv: (i + 1, step(adv)),
                         (tf.constant(0, steps.dtype), adv))
  return adv


def pgd_until_fooled(model_fn, x, y, seeds, *, eps, norm, steps, step_size, restarts, loss_fn=log_odds,
                     backend="cleverhans"):
  """PGD's `restarts` random starts side by side, each example leaving the batch at the first iterate of any of
  its restarts that fools the model: (x_adv [B, ...], fooled [B] bool).

  Why: the study's attack spends most of its time on examples already fooled. Here a fooled example costs
  (its restarts) × (the steps until one of them fools it), its rows are dropped from the batch (gathered out, so
  the work really shrinks), and the restarts of the examples still robust share one loop (one step of the loop
  for all of them, where restarts run one after another would take `restarts` times as many steps).

  What it computes. Row (n, r) is cleverhans PGD from start r of example n (the same projected steps as `pgd`,
  cleverhans's `optimize_linear` and `clip_eta`, or the fused op), so it is a pure function of (example, ε,
  restart): an example is fooled iff some iterate (the start included) of some restart is misclassified, or x
  itself is. That is the union over restarts of "some iterate fools", never less than cleverhans PGD's "the last
  iterate fools" (tests/evaluators/robustness/test_attacks.py checks the trajectory against cleverhans's own
  projected_gradient_descent). x_adv: per example the first fooling point (the lowest restart among those fooling
  at that step), x itself where it is misclassified already, else the last iterate of the restart with the
  largest loss.

  seeds: int64 [restarts·B, 2], the start of row r·B + n (restart-major; `example_seeds` per restart stream).
  eps, step_size: scalars on the [0, 1] scale in `norm`; steps, restarts: int scalars (tensors do not retrace).
  """
  ord_ = ORD[norm]
  x, y = tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y)
  batch = tf.shape(x)[0]
  restarts = tf.cast(restarts, tf.int32)
  start = random_start(seeds, x, norm=norm, eps=eps)  # [restarts·B, ...]: x gives the example shape
  owner = tf.tile(tf.range(batch), [restarts])  # the example of each row
  x_rows, y_rows = tf.gather(x, owner), tf.gather(y, owner)
  adv = tf.clip_by_value(x_rows + clip_eta(start, ord_, eps), 0.0, 1.0)
  fooled = misclassified(y, model_fn(x))  # x itself is in every ball
  kept = tf.reshape(tf.where(~tf.gather(fooled, owner)), [-1])
  rows = [tf.gather(t, kept) for t in (adv, x_rows, y_rows, owner)]
  update = projected_update(norm, eps=eps, step_size=step_size, backend=backend)

  def take_first(mask, owner, adv, found):
    """Per example, its first row where `mask` holds (rows are restart-major: the lowest restart) written into
    `found`; also which examples had one."""
    position = tf.where(mask, tf.range(tf.shape(mask)[0]), tf.int32.max)
    first = tf.math.unsorted_segment_min(position, owner, batch)
    has = first < tf.int32.max
    return tf.where(_per_example_mask(has, found), tf.gather(adv, tf.minimum(first, tf.shape(adv)[0] - 1)),
                    found), has

  def body(i, adv, x_rows, y_rows, owner, found, fooled):
    with tf.GradientTape() as tape:
      tape.watch(adv)
      logits = model_fn(adv)
      value = loss_fn(labels=y_rows, logits=logits)
    grad = tape.gradient(value, adv)
    found, hit = take_first(misclassified(y_rows, logits), owner, adv, found)
    fooled = fooled | hit
    kept = tf.reshape(tf.where(~tf.gather(fooled, owner)), [-1])  # the rows of every example now fooled leave
    adv, x_rows, y_rows, owner, grad = (tf.gather(t, kept) for t in (adv, x_rows, y_rows, owner, grad))
    return i + 1, update(adv, x_rows, grad), x_rows, y_rows, owner, found, fooled

  steps = tf.cast(steps, tf.int32)
  any_rows = [tf.TensorShape([None]).concatenate(t.shape[1:]) for t in rows]
  invariants = [tf.TensorShape([])] + any_rows + [x.shape, fooled.shape]
  _, adv, _, y_rows, owner, found, fooled = tf.while_loop(
      lambda i, adv, *_: (i < steps) & (tf.shape(adv)[0] > 0), body,
      [tf.constant(0, tf.int32)] + rows + [x, fooled], shape_invariants=invariants)

  def last(adv, y_rows, owner, found, fooled):
    """The last iterates: the first hit per example if any, else the row of the largest loss."""
    logits = model_fn(adv)
    value = loss_fn(labels=y_rows, logits=logits)
    found, hit = take_first(misclassified(y_rows, logits), owner, adv, found)
    fooled = fooled | hit
    top = tf.equal(value, tf.gather(tf.math.unsorted_segment_max(value, owner, batch), owner))
    return take_first(top & ~tf.gather(fooled, owner), owner, adv, found)[0], fooled

  # A convolution cannot take an empty batch (runner.make_attack_step), and nothing is left to check then.
  return tf.cond(tf.shape(adv)[0] > 0, lambda: last(adv, y_rows, owner, found, fooled), lambda: (found, fooled))


def restart_seeds(index, seed, restarts, first_restart=0):
  """Seed pairs [restarts·B, 2] of `pgd_until_fooled`'s rows: restart r of example n (row r·B + n) draws from
  stream first_restart + r, so restart 3 run alone (restarts=1, first_restart=3) draws the start restart 3 of a
  run of 5 does, on any subset of the examples."""
  restarts = tf.cast(restarts, tf.int32)
  streams = tf.cast(first_restart, tf.int32) + tf.range(restarts)
  return example_seeds(tf.tile(index, [restarts]), seed, tf.repeat(streams, tf.size(index)))


def attack_batch(model_fn, x, y, index, *, attack, norm, loss, seed, eps, step_size, steps, restarts,
                 first_restart=0, backend="cleverhans"):
  """Adversarial examples for one batch.

  attack: "fgsm", "pgd" (`pgd_until_fooled`: `restarts` random starts side by side, each example done at the
  first iterate that fools the model) or "noise" (a random point on the ε-sphere: the baseline an attack must
  beat). eps, step_size: scalars on the [0, 1] scale; steps, restarts: int32 scalars. y: the true labels.
  first_restart: the number of the first restart (int32 scalar), see `restart_seeds`.
  backend: the PGD step ("cleverhans" or "fused", see `pgd`).
  """
  loss_fn = LOSSES[loss]
  if attack == "fgsm":
    return fgsm(model_fn, x, y, eps=eps, norm=norm, loss_fn=loss_fn)
  if attack == "noise":
    return tf.clip_by_value(x + eps * random_sphere(example_seeds(index, seed, NOISE_STREAM), x, norm=norm), 0., 1.)
  return pgd_until_fooled(model_fn, x, y, restart_seeds(index, seed, restarts, first_restart), eps=eps, norm=norm,
                          steps=steps, step_size=step_size, restarts=restarts, loss_fn=loss_fn, backend=backend)[0]
