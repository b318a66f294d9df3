"""Eigen-solvers on a black-box symmetric operator: power iteration, Lanczos, Hutchinson, SLQ.

Pure numpy, float64 throughout (the operator may compute in float32; its results are promoted here), so that
the tridiagonal matrix and the Ritz values are not limited by float32 round-off (google/spectral-density).
`matvec(v) -> H v` takes and returns 1-D float64 arrays. "Top" eigenvalues are the largest in magnitude,
sign kept: what power iteration finds, and what PyHessian reports.
"""

import dataclasses
from typing import Callable, List, Optional

import numpy as np

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


def _relative_change(new, old):
  return abs(new - old) / (abs(old) + _EPS_REL)


def rademacher(rng, n):
  """A vector of ±1 (float64): E[z zᵀ] = I, the lowest-variance choice for Hutchinson."""
  return rng.integers(0, 2, size=n).astype(np.float64) * 2.0 - 1.0


def power_iteration(matvec: Callable, n: int, k: int, *, max_iter: int, tol: float, rng) -> EigenResult:
  """Top-k eigenvalues by power iteration with deflation, PyHessian's algorithm and stopping rule.

  `max_iter` bounds the iterations per eigenvalue; `converged` is False if any eigenvalue hit that bound.
  """
  eigenvalues, eigenvectors = [], []
  products, all_converged = 0, True
  for _ in range(k):
    v = rng.standard_normal(n)
    v /= np.linalg.norm(v)
    lam, converged = None, False
    for _ in range(max_iter):
      for u in eigenvectors:  # Deflation: stay orthogonal to the eigenvectors already found.
        v -= np.dot(u, v) * u
      v /= np.linalg.norm(v)
      hv = matvec(v)
      products += 1
      new = float(np.dot(v, hv))
      norm = np.linalg.norm(hv)
      v = hv / norm if norm > 0 else v
      if lam is not None and _relative_change(new, lam) < tol:
        lam, converged = new, True
        break
      lam = new
    all_converged &= converged
    eigenvalues.append(lam)
    eigenvectors.append(v)
  return EigenResult(eigenvalues, products, products, all_converged)


def _top_by_magnitude(theta, k):
  order = np.argsort(-np.abs(theta), kind="stable")[:k]
  return order


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


def lanczos_top(matvec: Callable, n: int, k: int, *, max_iter: int, tol: float, rng) -> EigenResult:
  """Top-k eigenvalues by Lanczos from a random start. `max_iter` bounds the steps (= products), capped at n.

  Converged when each of the top-k Ritz values θ has residual bound |β s_m| ≤ tol·|θ|: an a-posteriori
  guarantee that H has an eigenvalue within tol·|θ| of θ (stricter than PyHessian's relative-change rule,
  which stops whenever two consecutive estimates agree, however far both are from λ).
  """
  state = {"converged": False}

  def on_step(alphas, betas, beta_next):
    if len(alphas) < k:
      return False
    theta, s = tridiagonal_eigh(alphas, betas)
    order = _top_by_magnitude(theta, k)
    if all(abs(beta_next * s[-1, i]) <= tol * (abs(theta[i]) + _EPS_REL) for i in order):
      state["converged"] = True
      return True
    return False

  v0 = rng.standard_normal(n)
  alphas, betas, beta_next, exhausted = lanczos_tridiagonal(matvec, v0, max_iter, on_step)
  theta, s = tridiagonal_eigh(alphas, betas)
  order = _top_by_magnitude(theta, k)
  residuals = [0.0 if exhausted else float(abs(beta_next * s[-1, i])) for i in order]
  converged = state["converged"] or (exhausted and len(alphas) >= k)
  steps = len(alphas)
  return EigenResult([float(t) for t in theta[order]], steps, steps, bool(converged), residuals)


@dataclasses.dataclass
class TraceResult:
  """Hutchinson's estimate of tr(H): mean of zᵀHz over Rademacher z, and its standard error."""
  trace: float
  standard_error: float
  samples: int


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


def batched_power_iteration(matvec: Callable, v0, *, max_iter: int, tol: float) -> EigenResult:
  """Top eigenvalue of each of N independent operators at once (rows of v0 [N, d]; matvec maps [N, d] to
  [N, d] row by row). Stops when every row meets the relative-change rule; one iteration = one batched product.
  """
  v = np.array(v0, np.float64)
  lam, converged, it = None, False, 0
  for it in range(1, max_iter + 1):
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    hv = np.asarray(matvec(v), np.float64)
    new = np.sum(v * hv, axis=1)
    norm = np.linalg.norm(hv, axis=1, keepdims=True)
    v = np.where(norm > 0, hv / np.where(norm > 0, norm, 1.0), v)
    if lam is not None and np.max(np.abs(new - lam) / (np.abs(lam) + _EPS_REL)) < tol:
      lam, converged = new, True
      break
    lam = new
  return EigenResult([float(x) for x in lam], it, it, converged)
