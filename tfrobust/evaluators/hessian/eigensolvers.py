"""Eigen-solvers on a black-box symmetric operator: power iteration, Lanczos, Hutchinson, SLQ.

Pure numpy, float64 throughout (the operator may compute in float32; its results are promoted here), so that
the tridiagonal matrix and the Ritz values are not limited by float32 round-off (google/spectral-density).
`matvec(v) -> H v` takes and returns 1-D float64 arrays. "Top" eigenvalues are the largest algebraically, in
descending order: λ_max first, never a negative eigenvalue of larger magnitude (PyHessian reports whatever
power iteration finds, the largest |λ|, which at a saddle is the most negative one). Lanczos also gives the
smallest (most negative) Ritz value from the same run.
"""

import dataclasses
import functools
from typing import Callable, List, Optional

import numpy as np
import threadpoolctl

# PyHessian's stopping rule (power iteration): |λ_t - λ_{t-1}| / (|λ_{t-1}| + 1e-6) < tol.
_EPS_REL = 1e-6
# Keep the Lanczos basis in float64 up to this many bytes, float32 above (VGG-sized models).
_BASIS_BYTES_FP64 = 2 ** 30


@dataclasses.dataclass
class EigenResult:
  """Top eigenvalues and how they were found. `products`: Hessian-vector products spent."""
  eigenvalues: List[float]
  iterations: int
  products: int
  converged: bool
  residuals: Optional[List[float]] = None  # Lanczos: bound |β s_m| on |θ - λ| for each Ritz value.
  min_eigenvalue: Optional[float] = None  # Lanczos: the smallest Ritz value (None from power iteration)
  min_converged: Optional[bool] = None  # its residual bound within tol·|θ_min|, or the Krylov space exhausted
  min_residual: Optional[float] = None


def one_blas_thread(solver):
  """Runs `solver` with numpy's BLAS on one thread. Between Hessian-vector products the solvers do only small
  vector work, but OpenBLAS's idle threads keep spinning and take the cores TensorFlow's pool needs for the next
  product: on 2 cores a LeNet HVP took 0.088 s with numpy's default threads and 0.061 s with one
  (bench/hessian_pyhessian.py, "BLAS 1" rows)."""
  @functools.wraps(solver)
  def run(*args, **kwargs):
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
      return solver(*args, **kwargs)
  return run


def _relative_change(new, old):
  return abs(new - old) / (abs(old) + _EPS_REL)


def rademacher(rng, n):
  """A vector of ±1 (float64): E[z zᵀ] = I, the lowest-variance choice for Hutchinson."""
  return rng.integers(0, 2, size=n).astype(np.float64) * 2.0 - 1.0


def _power(matvec, n, found, shift, *, max_iter, tol, rng):
  """One eigenpair of H + shift·I by power iteration, orthogonal to the vectors `found`, PyHessian's stopping
  rule applied to the eigenvalue of H; (λ of H, vector, products, converged)."""
  v = rng.standard_normal(n)
  v /= np.linalg.norm(v)
  lam, converged, products = None, False, 0
  for _ in range(max_iter):
    for u in found:  # Deflation: stay orthogonal to the eigenvectors already found.
      v -= np.dot(u, v) * u
    v /= np.linalg.norm(v)
    hv = matvec(v) + shift * v
    products += 1
    new = float(np.dot(v, hv)) - shift
    norm = np.linalg.norm(hv)
    v = hv / norm if norm > 0 else v
    if lam is not None and _relative_change(new, lam) < tol:
      lam, converged = new, True
      break
    lam = new
  return lam, v, products, converged


@one_blas_thread
def power_iteration(matvec: Callable, n: int, k: int, *, max_iter: int, tol: float, rng) -> EigenResult:
  """Top-k eigenvalues (largest first) by power iteration with deflation, PyHessian's algorithm and stopping rule.

  Power iteration finds the λ_d of largest |λ|. When λ_d ≥ 0 it is λ_max, and the next ones are found by
  deflation on H + λ_d·I; when λ_d < 0 all k are found on H + |λ_d|·I. That operator is positive semi-definite,
  so its dominant eigenvalues are H's largest, not negative ones of large magnitude; the shift slows
  convergence ((λ₂ + c)/(λ₁ + c) per step instead of λ₂/λ₁), which Lanczos does not suffer. No min_eigenvalue
  (None): a shifted run toward λ_min crawls when the bulk of the spectrum sits near 0; use Lanczos for it.
  `max_iter` bounds the iterations per eigenvalue; `converged` is False if any eigenvalue hit that bound.
  """
  kw = dict(max_iter=max_iter, tol=tol, rng=rng)
  lam, v, products, shift_converged = _power(matvec, n, [], 0.0, **kw)
  shift = abs(lam)
  found = [(lam, v, shift_converged)] if lam >= 0 else []
  while len(found) < k:
    lam, v, p, converged = _power(matvec, n, [f[1] for f in found], shift, **kw)
    products += p
    found.append((lam, v, converged))
  values = sorted((f[0] for f in found), reverse=True)
  return EigenResult(values, products, products, shift_converged and all(f[2] for f in found))


def _top_algebraic(theta, k):
  """Indices of the k largest Ritz values, largest first."""
  return np.argsort(-theta, kind="stable")[:k]


def lanczos_tridiagonal(matvec: Callable, v0, num_steps: int, on_step: Optional[Callable] = None):
  """Lanczos with full reorthogonalisation (twice, Gram-Schmidt): the tridiagonal (alphas, betas).

  Stops early when the Krylov space is exhausted (β ≈ 0: T's eigenvalues are then exact) or when
  `on_step(alphas, betas, beta_next)` returns True. Returns (alphas, betas, beta_next, exhausted).
  """
  n = v0.shape[0]
  num_steps = min(num_steps, n)
  dtype = np.float64 if (num_steps + 1) * n * 8 <= _BASIS_BYTES_FP64 else np.float32
  basis = np.zeros((num_steps, n), dtype)
  q = v0 / np.linalg.norm(v0)
  alphas, betas = [], []
  beta, exhausted = 0.0, False
  for j in range(num_steps):
    basis[j] = q
    w = matvec(q)
    alpha = float(np.dot(q, w))
    w = w - alpha * q - (beta * basis[j - 1] if j > 0 else 0.0)
    for _ in range(2):  # Full reorthogonalisation; twice is enough (Kahan's "twice is enough").
      w -= basis[:j + 1].T.astype(np.float64) @ (basis[:j + 1].astype(np.float64) @ w)
    beta = float(np.linalg.norm(w))
    alphas.append(alpha)
    scale = max(abs(a) for a in alphas) + (max(betas) if betas else 0.0)
    if beta <= 1e-10 * max(scale, 1e-30):
      exhausted = True
      break
    if on_step is not None and on_step(alphas, betas, beta):
      break
    if j + 1 < num_steps:
      betas.append(beta)
      q = w / beta
  return np.array(alphas), np.array(betas), beta, exhausted


def tridiagonal_eigh(alphas, betas):
  """Eigenvalues (ascending) and eigenvectors of the symmetric tridiagonal T, in float64."""
  m = len(alphas)
  t = np.diag(np.asarray(alphas, np.float64))
  if m > 1:
    t += np.diag(betas[:m - 1], 1) + np.diag(betas[:m - 1], -1)
  return np.linalg.eigh(t)


@one_blas_thread
def lanczos_top(matvec: Callable, n: int, k: int, *, max_iter: int, tol: float, rng) -> EigenResult:
  """Top-k eigenvalues (largest first) by Lanczos from a random start. `max_iter` bounds the steps (= products),
  capped at n.

  Converged when each of the top-k Ritz values θ has residual bound |β s_m| ≤ tol·|θ|: an a-posteriori
  guarantee that H has an eigenvalue within tol·|θ| of θ (stricter than PyHessian's relative-change rule,
  which stops whenever two consecutive estimates agree, however far both are from λ). The smallest Ritz value
  comes free as min_eigenvalue, with its own bound and flag; the run does not go on for it, so it may be
  unconverged when the top-k are (Ritz values converge fastest at the well-separated end of the spectrum).
  """
  state = {"converged": False}

  def on_step(alphas, betas, beta_next):
    if len(alphas) < k:
      return False
    theta, s = tridiagonal_eigh(alphas, betas)
    order = _top_algebraic(theta, k)
    if all(abs(beta_next * s[-1, i]) <= tol * (abs(theta[i]) + _EPS_REL) for i in order):
      state["converged"] = True
      return True
    return False

  v0 = rng.standard_normal(n)
  alphas, betas, beta_next, exhausted = lanczos_tridiagonal(matvec, v0, max_iter, on_step)
  theta, s = tridiagonal_eigh(alphas, betas)
  order = _top_algebraic(theta, k)
  residuals = [0.0 if exhausted else float(abs(beta_next * s[-1, i])) for i in order]
  converged = state["converged"] or (exhausted and len(alphas) >= k)
  steps = len(alphas)
  min_residual = 0.0 if exhausted else float(abs(beta_next * s[-1, 0]))  # theta is ascending
  return EigenResult([float(t) for t in theta[order]], steps, steps, bool(converged), residuals,
                     min_eigenvalue=float(theta[0]), min_residual=min_residual,
                     min_converged=bool(min_residual <= tol * (abs(theta[0]) + _EPS_REL)))


@dataclasses.dataclass
class TraceResult:
  """Hutchinson's estimate of tr(H): mean of zᵀHz over Rademacher z, and its standard error."""
  trace: float
  standard_error: float
  samples: int


@one_blas_thread
def hutchinson(matvec: Callable, n: int, *, max_samples: int, tol: float, rng, min_samples: int = 10):
  """tr(H) by Hutchinson with Rademacher vectors; stops once the standard error is ≤ tol·|mean|."""
  values = []
  for s in range(max_samples):
    z = rademacher(rng, n)
    values.append(float(np.dot(z, matvec(z))))
    if s + 1 >= min(min_samples, max_samples) and s + 1 >= 2:
      se = np.std(values, ddof=1) / np.sqrt(len(values))
      if se <= tol * abs(np.mean(values)):
        break
  se = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("inf")
  return TraceResult(float(np.mean(values)), se, len(values))


@one_blas_thread
def slq(matvec: Callable, n: int, *, num_steps: int, num_runs: int, rng):
  """Stochastic Lanczos quadrature: nodes (Ritz values) and weights (squared first components of T's
  eigenvectors, divided by the number of runs) of the spectral density of H; the weights sum to 1."""
  nodes, weights = [], []
  for _ in range(num_runs):
    alphas, betas, _, _ = lanczos_tridiagonal(matvec, rademacher(rng, n), num_steps)
    theta, s = tridiagonal_eigh(alphas, betas)
    nodes.append(theta)
    weights.append(s[0] ** 2 / num_runs)
  return np.concatenate(nodes), np.concatenate(weights)


def smooth_density(nodes, weights, *, num_points=1000, relative_sigma=0.01):
  """The SLQ density smoothed by Gaussians of width σ = relative_sigma · (spectral range), on a grid that
  extends 5σ past the extreme nodes; normalised to integrate to 1 (trapezoid rule). Returns (grid, density, σ).
  """
  lo, hi = float(np.min(nodes)), float(np.max(nodes))
  sigma = relative_sigma * max(hi - lo, 1e-3 * max(abs(lo), abs(hi)), 1e-12)
  grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, num_points)
  z = (grid[:, None] - nodes[None, :]) / sigma
  density = (np.exp(-0.5 * z ** 2) / (sigma * np.sqrt(2 * np.pi))) @ weights
  density /= np.trapezoid(density, grid)
  return grid, density, sigma


@one_blas_thread
def batched_power_iteration(matvec: Callable, v0, *, max_iter: int, tol: float) -> EigenResult:
  """Largest eigenvalue of each of N independent operators at once (rows of v0 [N, d]; matvec maps [N, d] to
  [N, d] row by row). Stops when every row meets the relative-change rule; one iteration = one batched product.
  A row whose dominant eigenvalue λ_d is negative is run again on H + |λ_d|·I (see power_iteration), all rows
  together (the others start from their converged vectors and stop at once); iterations add up.
  """
  first = _batched_power(matvec, np.array(v0, np.float64), np.zeros(len(v0)), max_iter=max_iter, tol=tol)
  lam = np.asarray(first[0].eigenvalues)
  if not (lam < 0).any():
    return first[0]
  shift = np.where(lam < 0, -lam, 0.0)
  start = np.where((lam < 0)[:, None], np.asarray(v0, np.float64), first[1])
  second, _ = _batched_power(matvec, start, shift, max_iter=max_iter, tol=tol)
  second.iterations += first[0].iterations
  second.products = second.iterations
  second.converged = second.converged and first[0].converged
  return second


def _batched_power(matvec, v, shift, *, max_iter, tol):
  """batched_power_iteration on H_i + shift_i·I; (EigenResult of the H_i, last vectors)."""
  shift = np.asarray(shift, np.float64)[:, None]
  lam, converged, it = None, False, 0
  for it in range(1, max_iter + 1):
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    hv = np.asarray(matvec(v), np.float64) + shift * v
    new = np.sum(v * hv, axis=1) - shift[:, 0]
    norm = np.linalg.norm(hv, axis=1, keepdims=True)
    v = np.where(norm > 0, hv / np.where(norm > 0, norm, 1.0), v)
    if lam is not None and np.max(np.abs(new - lam) / (np.abs(lam) + _EPS_REL)) < tol:
      lam, converged = new, True
      break
    lam = new
  return EigenResult([float(x) for x in lam], it, it, converged), v
