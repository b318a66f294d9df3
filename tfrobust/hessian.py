"""The loss Hessian of a trained classifier: top-k eigenvalues, trace and spectral density (PyHessian in TF).

"Top" means algebraically largest, λ_max first (not PyHessian's largest |λ|: at a saddle that is a negative
eigenvalue); Lanczos also records the smallest eigenvalue, the most negative curvature, from the same run.

The loss is the mean cross-entropy over a fixed subset of the training set, the model in inference mode
(BatchNorm moving statistics, no dropout). Hessian-vector products (HVPs, tfrobust/hvp.py) are summed over
batches inside one `tf.function` whose weights and vector are arguments: no retrace per iteration, and none for
the next model of the same architecture (a sweep's trials). Under a MirroredStrategy each replica takes a share
of the batches and the products are summed.

HVP by double backprop (nested GradientTapes, "reverse") or forward-over-reverse (ForwardAccumulator around
the gradient tape, "forward"). Measured with bench/hessian.py on 2 CPU cores (TF 2.21), median seconds per
product (gradient = 1.0x):
  LeNet (107,786 weights), 1,000 mnist5k images: gradient 0.41 s; reverse 0.73 s (1.78x), forward 1.03 s (2.53x);
  MLP (85,002 weights), 1,437 digits images: gradient 0.017 s; reverse 0.033 s (1.92x), forward 0.037 s (2.15x).
Double backprop is faster (by 10-30 %) and is the default; forward-over-reverse stays selectable
(`hvp_mode="forward"`) as a second code path that the tests check against the first. (XLA `jit_compile` of
the batch product was measured too: no gain on CPU, 0.74 s vs 0.75 s for LeNet; not used.)

Eigen-solvers (power iteration with deflation, Lanczos, Hutchinson, SLQ) live in tfrobust/lanczos.py: Lanczos
reaches the top eigenvalue in about half the products of power iteration and with a residual guarantee.
"""

if __name__ == "__main__":  # `python -m tfrobust.hessian`: the CLI (tfrobust/hessian_cli.py), then exit.
  from tfrobust import hessian_cli
  hessian_cli.run()

import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from tfrobust import hvp as hvp_lib
from tfrobust import lanczos
from tfrobust.errors import UsageError
from tfrobust.hessian_flags import HessianConfig, METHODS  # noqa: F401  (TF-free there, re-exported here)

HVP_MODES = hvp_lib.MODES
DEFAULT_HVP_MODE = "reverse"


def subset_indices(num_train, examples, seed):
  """The training examples the Hessian is measured on: a pure function of (num_train, examples, seed), so
  every model of a sweep is measured on the same data. Sorted; all of them when examples >= num_train."""
  if examples >= num_train:
    return np.arange(num_train)
  return np.sort(np.random.default_rng([seed, 7]).choice(num_train, size=examples, replace=False))


def _layer_name(variable):
  name = getattr(variable, "path", None) or variable.name.split(":")[0]
  return name.rsplit("/", 1)[0]


class HessianAnalyzer:
  """The Hessian of the mean cross-entropy of `model` on (x, y) w.r.t. its trainable variables.

  x: images on the model's input scale ([0, 1] pixels), y: int labels. `batch_size` is the global number of
  examples per HVP batch (memory, not maths: the loss is the mean over all of x). `hvp_mode`: "reverse"
  (double backprop) or "forward" (forward-over-reverse). Vectors are flat, float64 numpy, in the order of
  `model.trainable_variables` (each flattened row-major). The Hessian is taken at the model's weights at the
  time of each product. Compiled functions are shared with every analyzer of a model of the same
  architecture (tfrobust.hvp): a new model of a sweep costs no new trace.
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
    self._sizes = [int(np.prod(tuple(v.shape), dtype=np.int64)) for v in self.variables]
    self.num_params = int(sum(self._sizes))
    self._dtype = tf.as_dtype(self.variables[0].dtype)
    self._batch_size = int(batch_size)
    self._x = np.asarray(x, np.float32)
    self._y = np.asarray(y, np.int64)
    self.num_examples = len(self._x)
    self._data = self._distribute(self._x, self._y)
    self._fns = _functions or hvp_lib.functions_for(model, self._strategy)

  def on_subset(self, x, y):
    """The same model on other examples, sharing the compiled functions (no retrace for the same size)."""
    return HessianAnalyzer(self.model, x, y, batch_size=self._batch_size, strategy=self._strategy,
                           hvp_mode=self.hvp_mode, _functions=self._fns)

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

  @property
  def tracing_count(self):
    """How many times the functions this analyzer uses were traced (1 per function once warm, also across
    models of the same architecture)."""
    return self._fns.tracing_count

  # ---- Products. ----
  def hvp(self, v):
    """H v for a flat vector v (length num_params); float64 numpy."""
    v = tf.constant(np.asarray(v), self._dtype)
    fn = self._fns.product("hvp_" + self.hvp_mode, self.num_params)
    return fn(*self._fns.values(self.model), v, self._data).numpy().astype(np.float64)

  def loss_and_gradient(self):
    """(mean loss, flat gradient) over the examples."""
    fn = self._fns.product("gradient", self.num_params)
    out = fn(*self._fns.values(self.model), tf.zeros([self.num_params], self._dtype), self._data).numpy()
    return float(out[0]), out[1:].astype(np.float64)

  # ---- The questions. ----
  def top_eigenvalues(self, k=1, *, method="lanczos", max_iter=100, tol=1e-3, seed=0):
    """The k largest eigenvalues, descending, by "power" (PyHessian's, shifted) or "lanczos"; a
    lanczos.EigenResult (with Lanczos also min_eigenvalue, the smallest, and whether it converged)."""
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
    """Largest eigenvalue of each layer's diagonal block of H (beyond PyHessian: its #9, #10)."""
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

  def _input_hvp(self, v):
    """Per-example H_i v_i for all examples at once (the input Hessian of a sum is block-diagonal)."""
    fn, b, n = self._fns.input_hvp(), self._batch_size, self.num_examples
    values = self._fns.values(self.model)
    b = min(b, n)
    out = np.empty_like(v)
    for start in range(0, n, b):
      stop = min(start + b, n)
      pad = b - (stop - start)  # Equal batches: one trace.
      xb, yb, vb = (np.concatenate([a[start:stop], np.zeros((pad,) + a.shape[1:], a.dtype)])
                    for a in (self._x, self._y, v.astype(np.float32)))
      out[start:stop] = fn(*values, tf.constant(xb), tf.constant(yb), tf.constant(vb)).numpy()[:stop - start]
    return out

  def input_top_eigenvalue(self, *, max_iter=100, tol=1e-3, seed=0):
    """Largest eigenvalue of the Hessian of each example's loss w.r.t. its input (pixel scale [0, 1]) by power
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
  """top_eigenvalues (descending), min_eigenvalue and min_eigenvalue_converged (None by power iteration)."""
  d = {"top_eigenvalues": result.eigenvalues, "iterations": result.iterations, "products": result.products,
       "converged": result.converged, "min_eigenvalue": result.min_eigenvalue,
       "min_eigenvalue_converged": result.min_converged}
  if result.residuals is not None:
    d["residual_bounds"] = result.residuals
    d["min_eigenvalue_residual_bound"] = result.min_residual
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
    converged = t.standard_error <= tol * abs(t.trace)  # Hutchinson's rule; its SE falls only as 1/√samples.
    section["trace"] = {"mean": t.trace, "standard_error": t.standard_error, "samples": t.samples,
                        "converged": bool(converged)}
    warnings += [] if converged else ["trace"]
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
      if top.min_eigenvalue is not None:
        tf.summary.scalar("hessian/min_eigenvalue", top.min_eigenvalue, step=0)
      if config.trace:
        tf.summary.scalar("hessian/trace", section["trace"]["mean"], step=0)
      if config.input:
        tf.summary.scalar("hessian/input_top_eigenvalue", section["input_top_eigenvalue"]["mean"], step=0)
    writer.flush()
  return {"hessian": section}

