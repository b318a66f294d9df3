"""The loss Hessian of a trained classifier as one object: top-k eigenvalues, trace and spectral density, per-layer
and input eigenvalues (PyHessian's `hessian` class, in TF). What a run records of it: evaluate.py.

"Top" means algebraically largest, λ_max first (not PyHessian's largest |λ|: at a saddle that is a negative
eigenvalue); Lanczos also records the smallest eigenvalue, the most negative curvature, from the same run.

The loss is the mean cross-entropy over a fixed subset of the training set, the model in inference mode
(BatchNorm moving statistics, no dropout). Hessian-vector products (HVPs, hvp.py) are summed over
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

Eigen-solvers (power iteration with deflation, Lanczos, Hutchinson, SLQ) live in eigensolvers.py: Lanczos
reaches the top eigenvalue in about half the products of power iteration and with a residual guarantee.
"""

import numpy as np
import tensorflow as tf

from tfrobust.errors import UsageError
from tfrobust.evaluators.hessian import eigensolvers
from tfrobust.evaluators.hessian import hvp as hvp_lib

HVP_MODES = hvp_lib.MODES
DEFAULT_HVP_MODE = "reverse"


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
  architecture (hvp.py): a new model of a sweep costs no new trace.
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
    """The k largest eigenvalues, descending, by "power" (PyHessian's, shifted) or "lanczos"; an
    eigensolvers.EigenResult (with Lanczos also min_eigenvalue, the smallest, and whether it converged)."""
    solver = {"power": eigensolvers.power_iteration, "lanczos": eigensolvers.lanczos_top}[method]
    return solver(self.hvp, self.num_params, k, max_iter=max_iter, tol=tol, rng=np.random.default_rng(seed))

  def trace(self, *, max_samples=100, tol=1e-3, seed=0):
    """tr(H) by Hutchinson (Rademacher vectors), with its standard error; an eigensolvers.TraceResult."""
    return eigensolvers.hutchinson(self.hvp, self.num_params, max_samples=max_samples, tol=tol,
                                   rng=np.random.default_rng(seed))

  def density(self, *, num_steps=100, num_runs=1, seed=0):
    """Spectral density by SLQ: raw nodes and weights (sum 1) and the Gaussian-smoothed density on a grid."""
    nodes, weights = eigensolvers.slq(self.hvp, self.num_params, num_steps=num_steps, num_runs=num_runs,
                                      rng=np.random.default_rng(seed))
    grid, density, sigma = eigensolvers.smooth_density(nodes, weights)
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
      solver = {"power": eigensolvers.power_iteration, "lanczos": eigensolvers.lanczos_top}[method]
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
    r = eigensolvers.batched_power_iteration(lambda v: self._input_hvp(v.reshape(shape)).reshape(v.shape), v0,
                                             max_iter=max_iter, tol=tol)
    lam = np.asarray(r.eigenvalues)
    return {"mean": float(np.mean(lam)), "std": float(np.std(lam)), "max": float(np.max(lam)),
            "examples": int(self.num_examples), "iterations": r.iterations, "converged": r.converged}


def count_params(model):
  """Number of scalar trainable parameters."""
  return int(sum(np.prod(tuple(v.shape), dtype=np.int64) for v in model.trainable_variables))
