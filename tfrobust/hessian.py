"""The loss Hessian of a trained classifier: top-k eigenvalues, trace and spectral density (PyHessian in TF).

The loss is the mean cross-entropy over a fixed subset of the training set, the model in inference mode
(BatchNorm moving statistics, no dropout). Hessian-vector products (HVPs) are summed over batches inside one
`tf.function` per model, built once and reused (the vector is a tensor argument: no retrace per iteration);
under a MirroredStrategy each replica takes a share of the batches and the products are summed.

HVP by double backprop (nested GradientTapes, "reverse") or forward-over-reverse (ForwardAccumulator around
the gradient tape, "forward"). Measured with bench/hessian.py on 2 CPU cores, seconds per product
(gradient = 1.0x):
  LeNet, 1,000 mnist5k images: reverse 0.052 s (1.25x), forward 0.068 s (1.65x);
  MLP, 1,437 digits images:    reverse 0.007 s (1.55x), forward 0.009 s (2.05x).
Double backprop is faster (by 23-24 %) and is the default; forward-over-reverse stays selectable
(`hvp_mode="forward"`) as a second code path that the tests check against the first.

Eigen-solvers (power iteration with deflation, Lanczos, Hutchinson, SLQ) live in tfrobust/lanczos.py.
"""

import dataclasses
import functools
import math
import os
import time
from typing import Optional

import numpy as np
import tensorflow as tf
from absl import logging

from tfrobust import lanczos
from tfrobust.errors import UsageError

METHODS = ("power", "lanczos")
HVP_MODES = ("reverse", "forward")
DEFAULT_HVP_MODE = "reverse"
# PyHessian#5: estimates on a few hundred examples vary by 10x; its maintainer recommends ~4,096.
DEFAULT_EXAMPLES = 4096
WHOLE_SET_DATASETS = ("digits",)
_FLAG_NAMES = {"subset_seed": "hessian_seed"}


@dataclasses.dataclass(frozen=True)
class HessianConfig:
  """What to measure about the Hessian and on which examples. `examples=None`: the whole training set for
  digits, min(4096, training set) otherwise. `max_iter` bounds products per eigenvalue (power), Lanczos steps,
  Hutchinson samples and SLQ steps; `tol` is the relative tolerance of each."""
  top_k: int = 1
  examples: Optional[int] = None
  subset_seed: int = 0
  method: str = "lanczos"
  max_iter: int = 100
  tol: float = 1e-3
  trace: bool = False
  density: bool = False
  input: bool = False
  per_layer: bool = False
  repeats: int = 1
  batch_size: int = 512

  def _bad(self, field, why):
    raise UsageError(f"--{_FLAG_NAMES.get(field, 'hessian_' + field)}={getattr(self, field)}: {why}")

  def validate(self):
    """Checks what can be checked without the model and data; raises UsageError naming the flag."""
    if self.top_k <= 0:
      self._bad("top_k", "must be >= 1")
    if self.examples is not None and self.examples <= 0:
      self._bad("examples", "must be >= 1")
    if self.method not in METHODS:
      self._bad("method", f"choose one of {', '.join(METHODS)}")
    if self.max_iter <= 0:
      self._bad("max_iter", "must be >= 1")
    if not (math.isfinite(self.tol) and self.tol > 0):
      self._bad("tol", "must be a finite number > 0")
    if self.repeats <= 0:
      self._bad("repeats", "must be >= 1")
    if self.batch_size <= 0:
      self._bad("batch_size", "must be >= 1")
    if self.method == "lanczos" and self.max_iter < self.top_k:
      self._bad("max_iter", f"Lanczos needs at least --hessian_top_k={self.top_k} steps")
    return self

  def num_examples(self, dataset_name, num_train):
    """The subset size: the flag, else the default for this dataset."""
    if self.examples is not None:
      return self.examples
    return num_train if dataset_name in WHOLE_SET_DATASETS else min(DEFAULT_EXAMPLES, num_train)

  def validate_against(self, num_params, num_train):
    """Checks that need the model (its number of parameters) and the training set size."""
    self.validate()
    if self.top_k > num_params:
      self._bad("top_k", f"larger than the model's {num_params} parameters")
    if self.examples is not None and self.examples > num_train:
      self._bad("examples", f"larger than the training set ({num_train} examples)")
    return self


def subset_indices(num_train, examples, seed):
  """The training examples the Hessian is measured on: a pure function of (num_train, examples, seed), so
  every model of a sweep is measured on the same data. Sorted; all of them when examples >= num_train."""
  if examples >= num_train:
    return np.arange(num_train)
  return np.sort(np.random.default_rng([seed, 7]).choice(num_train, size=examples, replace=False))


def _cross_entropy(logits, labels):
  """Per-example cross-entropy from logits; written out so that both autodiff modes see plain ops."""
  if logits.dtype in (tf.float16, tf.bfloat16):
    logits = tf.cast(logits, tf.float32)
  return tf.reduce_logsumexp(logits, axis=-1) - tf.gather(logits, labels, batch_dims=1)


def _unwrap(variable):
  """The tf.Variable behind a Keras 3 variable (ForwardAccumulator needs real tf.Variables)."""
  return variable.value if not isinstance(variable, tf.Variable) and hasattr(variable, "value") else variable


def _layer_name(variable):
  name = getattr(variable, "path", None) or variable.name.split(":")[0]
  return name.rsplit("/", 1)[0]


class HessianAnalyzer:
  """The Hessian of the mean cross-entropy of `model` on (x, y) w.r.t. its trainable variables.

  x: images on the model's input scale ([0, 1] pixels), y: int labels. `batch_size` is the global number of
  examples per HVP batch (memory, not maths: the loss is the mean over all of x). `hvp_mode`: "reverse"
  (double backprop) or "forward" (forward-over-reverse). Vectors are flat, float64 numpy, in the order of
  `model.trainable_variables` (each flattened row-major).
  """

  def __init__(self, model, x, y, *, batch_size, strategy=None, hvp_mode=DEFAULT_HVP_MODE, _functions=None):
    if hvp_mode not in HVP_MODES:
      raise ValueError(f"hvp_mode={hvp_mode}: choose one of {HVP_MODES}")
    self.model = model
    self.hvp_mode = hvp_mode
    self._strategy = strategy or tf.distribute.get_strategy()
    self.variables = list(model.trainable_variables)
    if not self.variables:
      raise UsageError("the model has no trainable variables reachable: cannot differentiate it")
    self._params = [_unwrap(v) for v in self.variables]
    self._shapes = [tuple(int(d) for d in v.shape) for v in self._params]
    self._sizes = [int(np.prod(s, dtype=np.int64)) for s in self._shapes]
    self.num_params = int(sum(self._sizes))
    self._dtype = self._params[0].dtype
    self._batch_size = int(batch_size)
    self._x = np.asarray(x, np.float32)
    self._y = np.asarray(y, np.int64)
    self.num_examples = len(self._x)
    self._data = self._distribute(self._x, self._y)
    self._functions = {} if _functions is None else _functions

  def on_subset(self, x, y):
    """The same model on other examples, sharing the compiled functions (no retrace for the same size)."""
    return HessianAnalyzer(self.model, x, y, batch_size=self._batch_size, strategy=self._strategy,
                           hvp_mode=self.hvp_mode, _functions=self._functions)

  # ---- Data: padded to equal batches, weights 1/N for real examples and 0 for padding. ----
  def _distribute(self, x, y):
    replicas = self._strategy.num_replicas_in_sync
    n = len(x)
    num_batches = -(-n // self._batch_size)
    per_replica = -(-n // (num_batches * replicas))
    pad = num_batches * replicas * per_replica - n
    x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
    y = np.concatenate([y, np.zeros(pad, y.dtype)])
    w = np.concatenate([np.full(n, 1.0 / n, np.float32), np.zeros(pad, np.float32)])
    arrays = [a.reshape((num_batches, replicas, per_replica) + a.shape[1:]) for a in (x, y, w)]
    return self._strategy.experimental_distribute_values_from_function(
        lambda ctx: tuple(tf.constant(a[:, ctx.replica_id_in_sync_group]) for a in arrays))

  def _flatten(self, tensors):
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)

  def _unflatten(self, flat):
    return [tf.reshape(p, s) for p, s in zip(tf.split(flat, self._sizes), self._shapes)]

  def _loss(self, x, y, w):
    ce = _cross_entropy(self.model(x, training=False), y)
    return tf.reduce_sum(tf.cast(w, ce.dtype) * ce)

  def _batch_gradient(self, x, y, w, vs):
    del vs
    with tf.GradientTape() as tape:
      loss = self._loss(x, y, w)
    grads = tape.gradient(loss, self._params, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return tf.concat([tf.reshape(tf.cast(loss, self._dtype), [1]), self._flatten(grads)], axis=0)

  def _batch_hvp(self, x, y, w, vs):
    zero = tf.UnconnectedGradients.ZERO
    if self.hvp_mode == "forward":
      with tf.autodiff.ForwardAccumulator(self._params, vs) as acc:
        with tf.GradientTape() as tape:
          loss = self._loss(x, y, w)
        grads = tape.gradient(loss, self._params, unconnected_gradients=zero)
      return self._flatten(acc.jvp(grads, unconnected_gradients=zero))
    with tf.GradientTape() as outer:
      with tf.GradientTape() as inner:
        loss = self._loss(x, y, w)
      grads = inner.gradient(loss, self._params, unconnected_gradients=zero)
      gv = tf.add_n([tf.reduce_sum(g * v) for g, v in zip(grads, vs)])
    return self._flatten(outer.gradient(gv, self._params, unconnected_gradients=zero))

  def _replica_sum(self, batch_fn, size, v_flat, xs, ys, ws):
    vs = self._unflatten(v_flat)

    def body(i, acc):
      return i + 1, acc + batch_fn(xs[i], ys[i], ws[i], vs)

    acc = tf.zeros([size], self._dtype)  # The sum over batches starts at zero (PyHessian#4).
    return tf.while_loop(lambda i, _: i < tf.shape(xs)[0], body, (tf.constant(0), acc))[1]

  def _function(self, name):
    """The tf.function for `name` ("hvp_reverse", "hvp_forward", "gradient"), built once per model."""
    if name not in self._functions:
      batch_fn, size = ((self._batch_gradient, self.num_params + 1) if name == "gradient"
                        else (self._batch_hvp, self.num_params))
      strategy = self._strategy
      replica_fn = functools.partial(self._replica_sum, batch_fn, size)

      @tf.function
      def fn(v_flat, data):
        per_replica = strategy.run(replica_fn, args=(v_flat,) + tuple(data))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
      self._functions[name] = fn
    return self._functions[name]

  @property
  def tracing_count(self):
    """How many times the HVP/gradient functions were traced (1 per function once warm)."""
    return sum(f.experimental_get_tracing_count() for f in self._functions.values()
               if hasattr(f, "experimental_get_tracing_count"))

  # ---- Products. ----
  def hvp(self, v):
    """H v for a flat vector v (length num_params); float64 numpy."""
    v = tf.constant(np.asarray(v), self._dtype)
    return self._function("hvp_" + self.hvp_mode)(v, self._data).numpy().astype(np.float64)

  def loss_and_gradient(self):
    """(mean loss, flat gradient) over the examples."""
    out = self._function("gradient")(tf.zeros([self.num_params], self._dtype), self._data).numpy()
    return float(out[0]), out[1:].astype(np.float64)

  # ---- The questions. ----
  def top_eigenvalues(self, k=1, *, method="lanczos", max_iter=100, tol=1e-3, seed=0):
    """Top-k eigenvalues (largest |λ|, sign kept) by "power" (PyHessian) or "lanczos"; a lanczos.EigenResult."""
    solver = {"power": lanczos.power_iteration, "lanczos": lanczos.lanczos_top}[method]
    return solver(self.hvp, self.num_params, k, max_iter=max_iter, tol=tol, rng=np.random.default_rng(seed))

  def trace(self, *, max_samples=100, tol=1e-3, seed=0):
    """tr(H) by Hutchinson (Rademacher vectors), with its standard error; a lanczos.TraceResult."""
    return lanczos.hutchinson(self.hvp, self.num_params, max_samples=max_samples, tol=tol,
                              rng=np.random.default_rng(seed))

  def density(self, *, num_steps=100, num_runs=1, seed=0):
    """Spectral density by SLQ: raw nodes and weights (sum 1) and the Gaussian-smoothed density on a grid."""
    nodes, weights = lanczos.slq(self.hvp, self.num_params, num_steps=num_steps, num_runs=num_runs,
                                 rng=np.random.default_rng(seed))
    grid, density, sigma = lanczos.smooth_density(nodes, weights)
    return {"nodes": nodes.tolist(), "weights": weights.tolist(), "grid": grid.tolist(),
            "density": density.tolist(), "sigma": sigma, "steps": num_steps, "runs": num_runs}

  def layer_groups(self):
    """{layer name: flat parameter indices} in variable order."""
    offsets = np.cumsum([0] + self._sizes)
    groups = {}
    for i, v in enumerate(self.variables):
      groups.setdefault(_layer_name(v), []).append(np.arange(offsets[i], offsets[i + 1]))
    return {name: np.concatenate(parts) for name, parts in groups.items()}

  def per_layer_top_eigenvalues(self, *, method="lanczos", max_iter=100, tol=1e-3, seed=0):
    """Top eigenvalue of each layer's diagonal block of H (beyond PyHessian: its #9, #10)."""
    out = {}
    for name, idx in self.layer_groups().items():
      def block_matvec(u, idx=idx):
        full = np.zeros(self.num_params)
        full[idx] = u
        return self.hvp(full)[idx]
      solver = {"power": lanczos.power_iteration, "lanczos": lanczos.lanczos_top}[method]
      r = solver(block_matvec, len(idx), 1, max_iter=max_iter, tol=tol, rng=np.random.default_rng(seed))
      out[name] = {"top_eigenvalue": r.eigenvalues[0], "num_params": int(len(idx)),
                   "iterations": r.iterations, "converged": r.converged}
    return out

  def _input_hvp_function(self):
    if "input" not in self._functions:
      @tf.function
      def fn(x, y, vx):
        with tf.GradientTape(watch_accessed_variables=False) as outer:
          outer.watch(x)
          with tf.GradientTape(watch_accessed_variables=False) as inner:
            inner.watch(x)
            loss = tf.reduce_sum(_cross_entropy(self.model(x, training=False), y))
          gv = tf.reduce_sum(inner.gradient(loss, x) * vx)
        return outer.gradient(gv, x)
      self._functions["input"] = fn
    return self._functions["input"]

  def _input_hvp(self, v):
    """Per-example H_i v_i for all examples at once (the input Hessian of a sum is block-diagonal)."""
    fn, b, n = self._input_hvp_function(), self._batch_size, self.num_examples
    b = min(b, n)
    out = np.empty_like(v)
    for start in range(0, n, b):
      stop = min(start + b, n)
      pad = b - (stop - start)  # Equal batches: one trace.
      xb, yb, vb = (np.concatenate([a[start:stop], np.zeros((pad,) + a.shape[1:], a.dtype)])
                    for a in (self._x, self._y, v.astype(np.float32)))
      out[start:stop] = fn(tf.constant(xb), tf.constant(yb), tf.constant(vb)).numpy()[:stop - start]
    return out

  def input_top_eigenvalue(self, *, max_iter=100, tol=1e-3, seed=0):
    """Top eigenvalue of the Hessian of each example's loss w.r.t. its input (pixel scale [0, 1]) by power
    iteration, all examples at once; the mean and spread over examples."""
    shape = self._x.shape
    v0 = np.random.default_rng(seed).standard_normal((shape[0], int(np.prod(shape[1:]))))
    r = lanczos.batched_power_iteration(lambda v: self._input_hvp(v.reshape(shape)).reshape(v.shape), v0,
                                        max_iter=max_iter, tol=tol)
    lam = np.asarray(r.eigenvalues)
    return {"mean": float(np.mean(lam)), "std": float(np.std(lam)), "max": float(np.max(lam)),
            "examples": int(self.num_examples), "iterations": r.iterations, "converged": r.converged}


def count_params(model):
  """Number of scalar trainable parameters."""
  return int(sum(np.prod(tuple(v.shape), dtype=np.int64) for v in model.trainable_variables))


def top_eigenvalues(model, data, k=1, *, examples=None, subset_seed=0, method="lanczos", max_iter=100,
                  tol=1e-3, batch_size=512, strategy=None):
  """Top-k Hessian eigenvalues of a model trained elsewhere (Keras model or export.LoadedModel).

  `data`: a tfrobust.data.Dataset (its training set, subset as in run_section) or a pair (x, y) used whole
  (x on the [0, 1] pixel scale). Returns a lanczos.EigenResult.
  """
  config = HessianConfig(top_k=k, examples=examples, subset_seed=subset_seed, method=method,
                         max_iter=max_iter, tol=tol, batch_size=batch_size)
  if isinstance(data, tuple):
    x, y = data
    config.validate_against(count_params(model), len(x))
  else:
    n = len(data.x_train)
    config.validate_against(count_params(model), n)
    idx = subset_indices(n, config.num_examples(data.name, n), subset_seed)
    x, y = data.x_train[idx], data.y_train[idx]
  analyzer = HessianAnalyzer(model, x, y, batch_size=batch_size, strategy=strategy)
  return analyzer.top_eigenvalues(k, method=method, max_iter=max_iter, tol=tol, seed=subset_seed)


def _eigen_dict(result):
  d = {"top_eigenvalues": result.eigenvalues, "iterations": result.iterations, "products": result.products,
       "converged": result.converged}
  if result.residuals is not None:
    d["residual_bounds"] = result.residuals
  return d


def plot_density(density, path):
  """Writes the smoothed SLQ density (log scale, as PyHessian plots it) to `path` (PNG)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.5))
  ax.semilogy(density["grid"], np.asarray(density["density"]) + 1e-7)
  ax.set_xlabel("eigenvalue")
  ax.set_ylabel("density (SLQ, smoothed)")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def run_section(model, dataset, config, *, strategy, output_dir, writer, progress=True):
  """The "hessian" section of result.json for a trained model: top-k eigenvalues on a seeded subset of the
  training set, and trace, density, input and per-layer eigenvalues, repeats over subset seeds as asked.
  Non-convergence is recorded and warned about, not raised."""
  start = time.time()
  num_train = len(dataset.x_train)
  config.validate_against(count_params(model), num_train)
  examples = config.num_examples(dataset.name, num_train)
  seed, it, tol = config.subset_seed, config.max_iter, config.tol

  def subset(s):
    idx = subset_indices(num_train, examples, s)
    return dataset.x_train[idx], dataset.y_train[idx]

  def say(what):
    if progress:
      logging.info("hessian: %s (%.1f s)", what, time.time() - start)

  analyzer = HessianAnalyzer(model, *subset(seed), batch_size=config.batch_size, strategy=strategy)
  top = analyzer.top_eigenvalues(config.top_k, method=config.method, max_iter=it, tol=tol, seed=seed)
  say(f"top eigenvalues {top.eigenvalues} after {top.iterations} products")
  section = dict(_eigen_dict(top), method=config.method, tolerance=tol, max_iter=it, examples=examples,
                 subset_seed=seed, num_params=analyzer.num_params, hvp_mode=analyzer.hvp_mode)
  warnings = [] if top.converged else ["top_eigenvalues"]
  if config.trace:
    t = analyzer.trace(max_samples=it, tol=tol, seed=seed)
    section["trace"] = {"mean": t.trace, "standard_error": t.standard_error, "samples": t.samples}
    say(f"trace {t.trace:.4g} ± {t.standard_error:.2g}")
  if config.density:
    section["density"] = analyzer.density(num_steps=it, num_runs=1, seed=seed)
    if output_dir:
      plot_density(section["density"], os.path.join(output_dir, "hessian_density.png"))
    say("density")
  if config.input:
    section["input_top_eigenvalue"] = analyzer.input_top_eigenvalue(max_iter=it, tol=tol, seed=seed)
    warnings += [] if section["input_top_eigenvalue"]["converged"] else ["input_top_eigenvalue"]
    say(f"input top eigenvalue {section['input_top_eigenvalue']['mean']:.4g}")
  if config.per_layer:
    section["per_layer"] = analyzer.per_layer_top_eigenvalues(method=config.method, max_iter=it, tol=tol,
                                                              seed=seed)
    warnings += [f"per_layer/{k}" for k, v in section["per_layer"].items() if not v["converged"]]
    say("per-layer top eigenvalues")
  if config.repeats > 1:
    values = [top.eigenvalues]
    for r in range(1, config.repeats):
      res = analyzer.on_subset(*subset(seed + r)).top_eigenvalues(
          config.top_k, method=config.method, max_iter=it, tol=tol, seed=seed + r)
      values.append(res.eigenvalues)
      warnings += [] if res.converged else [f"repeats/seed_{seed + r}"]
    v = np.asarray(values)
    section["repeats"] = {"subset_seeds": list(range(seed, seed + config.repeats)), "values": v.tolist(),
                          "mean": v.mean(0).tolist(), "std": v.std(0, ddof=1).tolist(),
                          "all_converged": not any(w.startswith("repeats") for w in warnings)}
    say(f"repeats: top eigenvalue {v[:, 0].mean():.4g} ± {v[:, 0].std(ddof=1):.2g}")
  for w in warnings:
    logging.warning("hessian: %s did not converge to tol=%g within %d iterations; recorded as such", w, tol, it)
  section["not_converged"] = warnings
  section["seconds"] = time.time() - start
  if writer is not None:
    with writer.as_default():
      for i, lam in enumerate(top.eigenvalues):
        tf.summary.scalar(f"hessian/top_eigenvalue_{i}", lam, step=0)
      if config.trace:
        tf.summary.scalar("hessian/trace", section["trace"]["mean"], step=0)
      if config.input:
        tf.summary.scalar("hessian/input_top_eigenvalue", section["input_top_eigenvalue"]["mean"], step=0)
    writer.flush()
  return {"hessian": section}


if __name__ == "__main__":
  from tfrobust import hessian_cli
  hessian_cli.run()
