"""The attacks (attacks.py: FGSM, PGD, noise; apgd.py: APGD-CE, APGD-DLR, APGD-T; square.py: Square) run over any
subset of a fixed set of examples: compiled once per model and attack (and cached for as long as the model lives),
the subset packed into full batches, split over the replicas of a tf.distribute strategy, and handed back as
per-example numpy arrays in the subset's order. sequences.py decides which subset each pass attacks.

Units: images on the [0, 1] pixel scale; ε and the PGD step size on that scale, in the attack's norm; APGD steps
are gradient evaluations, Square queries model evaluations, per example.
"""

import weakref

import numpy as np
import tensorflow as tf

from tfrobust.evaluators.robustness import apgd, square
from tfrobust.evaluators.robustness.attacks import attack_batch, misclassified
from tfrobust.losses import cross_entropy

# Below this L2 norm an input gradient counts as tiny: cleverhans's L2 step divides by sqrt(max(1e-12, ‖g‖²)),
# so it moves less than asked (see attacks.py).
TINY_GRAD_NORM = 1e-6
# The compiled steps: "probe" (clean correctness and input gradients), cleverhans's "fgsm" and "pgd", the "noise"
# baseline, "apgd" (untargeted, loss "ce" or "dlr"), "apgd_t" (targeted DLR towards one ranked class), "square".
STEPS = ("probe", "fgsm", "pgd", "noise", "apgd", "apgd_t", "square")
# apgd.py draws APGD run k's start from seed stream APGD_STREAM + 2k (its _STREAMS_PER_RUN): run k alone is the
# seeds shifted by this much (tests/evaluators/robustness/test_runner.py pins it against apgd's own restarts).
APGD_STREAMS_PER_RUN = 2


def _connected(logits, images):
  """The logits plus 0·Σ images: the same values, and an input gradient that is zeros instead of None when the
  model is cut off from its input (stop_gradient, tf.round quantisation: the gradient masking the checks must
  report). cleverhans's compute_gradient returns that None, and `optimize_linear` then fails with "Tried to
  convert 'x' to a tensor and failed. Error: None values not supported."."""
  return logits + 0.0 * tf.reduce_sum(images)


def make_attack_step(model, *, attack, norm, loss="ce", strategy=None, return_examples=False,
                     backend="cleverhans"):
  """The compiled attack of one model: `step(batch, hparams) -> {"index", "correct"[, "x_adv"]}`.

  Built once and reused for every ε, run and batch: `batch` is (x, y, index) (with several replicas, a distributed
  iterator of them, each replica attacking its share with `strategy.run`, see `_compile`); `hparams`
  holds scalar tensors seed (int64), eps, step_size (float32, [0, 1] scale), steps, restarts, run, target, queries
  (int32), so changing them never retraces. The model runs in inference mode and returns logits.
  """
  if attack not in STEPS or attack == "probe":
    raise ValueError(f"attack={attack!r}: choose one of {', '.join(STEPS[1:])}")
  if backend == "fused":
    from tfrobust import ops
    ops.implementation()  # Loads the op library (or picks its fallback) now, not while tracing.

  def model_fn(images):
    return _connected(model(images, training=False), images)

  def replica_step(batch, hparams):
    x, y, index = batch

    def attacked():
      adv = _adversarial(model_fn, x, y, index, attack=attack, norm=norm, loss=loss, backend=backend, **hparams)
      return adv, ~misclassified(y, model_fn(adv))

    # A replica's share of a small last batch can be empty, and TensorFlow's CPU Conv2D fails on an empty batch
    # ("Incompatible shapes: [0,4,4,6] vs. [1,1,1,16]" in LeNet's second convolution): skip the model there.
    adv, correct = tf.cond(tf.size(index) > 0, attacked, lambda: (x, tf.zeros_like(y, tf.bool)))
    out = {"index": index, "correct": correct}
    if return_examples:
      out["x_adv"] = adv
    return out

  return _compile(replica_step, strategy)


def _adversarial(model_fn, x, y, index, *, attack, norm, loss, backend, seed, eps, step_size, steps, restarts, run,
                 target, queries):
  """One batch's adversarial examples. run: the number of the first restart (PGD) or APGD run (k = t·R + r for
  target t of APGD-T, as apgd.apgd_targeted numbers them); target: the rank after the true class of APGD-T's
  target class (0 = the runner-up of the clean logits)."""
  if attack in ("fgsm", "pgd", "noise"):
    return attack_batch(model_fn, x, y, index, attack=attack, norm=norm, loss=loss, seed=seed, eps=eps,
                        step_size=step_size, steps=steps, restarts=restarts, first_restart=run, backend=backend)
  if attack == "square":
    # square.py queries the model on the examples not misclassified yet, gathered: none of them (a batch the
    # model gets all wrong, at ε = 0) is an empty batch, which a convolution cannot take (see make_attack_step).
    wrong = tf.reduce_all(misclassified(y, model_fn(x)))
    return tf.cond(wrong, lambda: x, lambda: square.square(model_fn, x, y, square.square_seeds(index, seed), eps=eps,
                                                           norm=norm, queries=queries)[0])
  seeds = apgd.apgd_seeds(index, seed) + tf.stack(
      [tf.constant(0, tf.int64), APGD_STREAMS_PER_RUN * tf.cast(run, tf.int64)])
  if attack == "apgd":
    return apgd.apgd(model_fn, x, y, seeds, eps=eps, norm=norm, steps=steps, loss=loss, restarts=restarts)[0]
  logits = model_fn(x)
  ranked = tf.math.top_k(logits, tf.shape(logits)[1]).indices
  goal = tf.cast(tf.gather(ranked, target + 1, axis=1), y.dtype)
  return apgd.apgd(model_fn, x, y, seeds, eps=eps, norm=norm, steps=steps, loss="dlr_targeted", target=goal,
                   restarts=restarts)[0]


def make_probe_step(model, *, strategy=None):
  """Clean correctness and whether the input gradient of plain cross-entropy is exactly zero (or below
  TINY_GRAD_NORM, where cleverhans's own L2 step would shrink), per example."""
  def replica_step(batch, hparams):
    del hparams
    x, y, index = batch
    with tf.GradientTape() as tape:
      tape.watch(x)
      logits = _connected(model(x, training=False), x)
      value = cross_entropy(y, logits)
    grad = tf.reshape(tape.gradient(value, x), [tf.shape(x)[0], -1])
    return {"index": index,
            "correct": ~misclassified(y, logits),
            "zero_grad": tf.reduce_all(tf.equal(grad, 0.0), axis=1),
            "tiny_grad": tf.norm(grad, axis=1) < TINY_GRAD_NORM}

  return _compile(replica_step, strategy)


def _compile(replica_step, strategy):
  """With several replicas `step(iterator, hparams)` takes the next batch of a distributed iterator; with one it
  is `step(batch, hparams)` on an (x, y, index) batch of any size (no tf.data: creating a dataset and its
  iterator for every pass cost a fifth of a digits sweep)."""
  if strategy is not None and strategy.num_replicas_in_sync > 1:
    @tf.function
    def step(iterator, hparams):
      return strategy.run(replica_step, args=(next(iterator), hparams))
    return step
  return _AnyBatchSize(replica_step)


class _AnyBatchSize:
  """`fn(batch, hparams)` compiled on its first call for batches of any size (one trace: the survivors of each
  pass come in every size)."""

  def __init__(self, fn):
    self._fn, self._compiled = fn, None

  def __call__(self, batch, hparams):
    if self._compiled is None:
      signature = (tuple(tf.TensorSpec([None] + list(t.shape[1:]), t.dtype) for t in batch),
                   {k: tf.TensorSpec([], v.dtype) for k, v in hparams.items()})
      self._compiled = tf.function(self._fn, input_signature=signature)
    return self._compiled(batch, hparams)

  def experimental_get_tracing_count(self):
    return 0 if self._compiled is None else self._compiled.experimental_get_tracing_count()


# model -> {(attack, norm, loss, return_examples, backend, id(strategy)): (strategy, step)}. A study that reuses
# one model object for many trials (train.run.TrainerCache) traces each attack once, not once per trial: the
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


class AttackRunner:
  """Runs compiled attacks of one model over any subset of a fixed set of examples, packed into full batches
  (the last one partial), on the strategy.

  Results come back as numpy arrays in the order of the subset asked for, whatever the number of replicas or the
  batch size. backend: the PGD step, "cleverhans" or "fused" (see attacks.pgd).
  """

  def __init__(self, model, x, y, *, batch_size, seed, strategy=None, backend="cleverhans"):
    self._model, self._strategy, self._seed, self._backend = model, strategy, seed, backend
    self._distributed = strategy is not None and strategy.num_replicas_in_sync > 1
    self._x, self._y = np.asarray(x, np.float32), np.asarray(y, np.int64)
    self._batch_size = batch_size
    self.num_examples = len(x)
    self.num_batches = -(-len(x) // batch_size)

  def _dataset(self, indices):
    """The examples `indices` (ascending) as batches of batch_size for the replicas (one replica slices them
    itself, see `run`): a pass over a subset costs what its size does (masking the examples done would cost what
    the whole set does)."""
    ds = tf.data.Dataset.from_tensor_slices((self._x[indices], self._y[indices], indices))
    # No prefetch and no autotuning: the batches are in memory, and tf.data's background threads took a third
    # of the 2 CPU cores from the attack (bench/attack_throughput.py: PGD-20 on 500 MNIST images 4.5 s -> 2.8 s).
    options = tf.data.Options()
    options.autotune.enabled = False
    ds = ds.batch(self._batch_size).with_options(options)
    return self._strategy.experimental_distribute_dataset(ds) if self._distributed else ds

  def step(self, attack, norm, loss="ce", return_examples=False):
    """The compiled step for this attack (cached per model, see `compiled_step`)."""
    return compiled_step(self._model, attack, norm, loss=loss, strategy=self._strategy,
                         return_examples=return_examples, backend=self._backend)

  def run(self, attack, norm, *, indices=None, eps=0.0, step_size=0.0, steps=1, restarts=1, run=0, target=0,
          queries=1, loss="ce", return_examples=False, on_batch=None):
    """One pass over the examples `indices` (default: all): dict of arrays ("correct", ["zero_grad", "tiny_grad"
    | "x_adv"]) in the order of `indices`.

    attack: one of STEPS ("probe": clean correctness and zero input gradients).
    eps, step_size: on the [0, 1] pixel scale, in `norm`. steps: PGD or APGD iterations; restarts: random starts
    within this pass; run: the first restart's (or APGD run's) number, which picks its seeds; target: APGD-T's
    target rank; queries: Square's budget per example. on_batch: called after each batch (progress).
    """
    indices = np.arange(self.num_examples) if indices is None else np.asarray(indices, np.int64)
    step = self.step(attack, norm, loss, return_examples)
    if not len(indices):
      return {"correct": np.zeros(0, bool), **({"x_adv": self._x[:0]} if return_examples else {})}
    hparams = {"seed": tf.constant(self._seed, tf.int64), "eps": tf.constant(eps, tf.float32),
               "step_size": tf.constant(step_size, tf.float32), "steps": tf.constant(steps, tf.int32),
               "restarts": tf.constant(restarts, tf.int32), "run": tf.constant(run, tf.int32),
               "target": tf.constant(target, tf.int32), "queries": tf.constant(queries, tf.int32)}
    order = np.argsort(indices, kind="stable")
    ascending, parts = indices[order], []
    iterator = iter(self._dataset(ascending)) if self._distributed else None
    for start in range(0, len(indices), self._batch_size):
      if self._distributed:
        out = step(iterator, hparams)
      else:
        part = ascending[start:start + self._batch_size]
        out = step((tf.constant(self._x[part]), tf.constant(self._y[part]), tf.constant(part)), hparams)
      parts.append({k: self._to_numpy(v) for k, v in out.items()})
      if on_batch is not None:
        on_batch()
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    got = np.argsort(out.pop("index"), kind="stable")  # replicas may hand their shares back in any order
    back = np.empty_like(order)
    back[order] = np.arange(len(order))  # position in the ascending subset of each asked-for index
    return {k: v[got][back] for k, v in out.items()}

  def _to_numpy(self, value):
    if self._distributed:
      value = self._strategy.gather(value, axis=0)
    return value.numpy()
