"""The eigen-solvers (evaluators/hessian/eigensolvers.py: power iteration, Lanczos, Hutchinson, SLQ) against
numpy's dense eigendecomposition: on explicit symmetric matrices, and on the dense Hessians of tiny float64
networks (hessian_nets.py) through HessianAnalyzer's products."""

import os
import sys

import numpy as np
import pytest

from tfrobust.evaluators.hessian import eigensolvers
from tfrobust.evaluators.hessian.analyzer import HessianAnalyzer

sys.path.insert(0, os.path.dirname(__file__))  # pytest runs with --import-mode=importlib
from hessian_nets import (cases_fixture, dense_hessian, descending, float64,  # noqa: E402,F401 (*_fixture)
                          tiny_model, xy_fixture)




def by_magnitude(eigenvalues):
  return eigenvalues[np.argsort(-np.abs(eigenvalues))]


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("method", ["power", "lanczos"])
def test_top3_eigenvalues_match_dense(cases, xy, kind, method):
  model, h = cases[kind]
  eigenvalues = np.linalg.eigvalsh(h)
  want = descending(eigenvalues)[:3]
  r = HessianAnalyzer(model, *xy, batch_size=64).top_eigenvalues(3, method=method, max_iter=2000, tol=1e-8)
  assert r.converged
  np.testing.assert_allclose(r.eigenvalues, want, rtol=1e-3)
  np.testing.assert_allclose(r.eigenvalues, want, rtol=1e-6)  # Far inside the required 1e-3.
  if method == "lanczos":  # The run stops when the top 3 converge: the other end has its own bound and flag.
    assert r.min_eigenvalue >= eigenvalues[0] - 1e-12  # Interlacing: a Ritz value never passes λ_min.
    assert np.min(np.abs(eigenvalues - r.min_eigenvalue)) <= r.min_residual + 1e-12
    assert r.min_converged == (r.min_residual <= 1e-8 * (abs(r.min_eigenvalue) + 1e-6))
  else:
    assert r.min_eigenvalue is None and r.min_converged is None


def _with_large_negative_eigenvalue(n=150, seed=0):
  """A dense symmetric matrix whose most negative eigenvalue (−40) dominates |λ|: by magnitude the top 3
  would be −40, 12, 9; algebraically they are 12, 9, 7."""
  rng = np.random.default_rng(seed)
  q, _ = np.linalg.qr(rng.standard_normal((n, n)))
  lam = np.concatenate([[-40.0, 12.0, 9.0, 7.0], rng.uniform(-1, 1, n - 4)])
  return (q * lam) @ q.T


@pytest.mark.parametrize("method", ["power", "lanczos"])
def test_top_eigenvalues_are_algebraic_when_a_negative_one_dominates(method):
  h = _with_large_negative_eigenvalue()
  eigenvalues = np.linalg.eigvalsh(h)
  assert list(by_magnitude(eigenvalues)[:3]) != list(descending(eigenvalues)[:3])  # The orders differ here.
  solver = {"power": eigensolvers.power_iteration, "lanczos": eigensolvers.lanczos_top}[method]
  r = solver(lambda v: h @ v, len(h), 3, max_iter=2000, tol=1e-10, rng=np.random.default_rng(1))
  assert r.converged
  np.testing.assert_allclose(r.eigenvalues, [12.0, 9.0, 7.0], rtol=1e-6)
  if method == "lanczos":
    assert r.min_converged and r.min_eigenvalue == pytest.approx(-40.0, rel=1e-8)
    assert r.min_residual <= 1e-10 * 40
  else:
    assert r.min_eigenvalue is None
  # Batched power iteration (the input Hessian's): the largest eigenvalue of H is 12, of −H it is 40.
  hs = np.stack([h, -h])
  b = eigensolvers.batched_power_iteration(lambda v: np.einsum("nij,nj->ni", hs, v),
                                           np.random.default_rng(2).standard_normal((2, len(h))), max_iter=3000,
                                           tol=1e-12)
  assert b.converged
  np.testing.assert_allclose(b.eigenvalues, [12.0, 40.0], rtol=1e-6)


@pytest.mark.parametrize("method", ["power", "lanczos"])
def test_network_hessian_whose_magnitude_order_differs(xy, method):
  """A tiny CNN at small weights scored against its least likely class: a negative eigenvalue ranks second by
  |λ|, and top_eigenvalues must skip it; Lanczos records it as min_eigenvalue."""
  with float64():
    model = tiny_model("cnn", seed=0)
    for w in model.trainable_variables:
      if len(w.shape) > 1:
        w.assign(0.5 * w)
    y = np.argmin(model(xy[0]).numpy(), -1)
    eigenvalues = np.linalg.eigvalsh(dense_hessian(model, xy[0], y))
    assert eigenvalues[0] < 0 and list(by_magnitude(eigenvalues)[:3]) != list(descending(eigenvalues)[:3])
    r = HessianAnalyzer(model, xy[0], y, batch_size=64).top_eigenvalues(3, method=method, max_iter=3000,
                                                                        tol=1e-11)
  assert r.converged
  np.testing.assert_allclose(r.eigenvalues, descending(eigenvalues)[:3], rtol=1e-5)
  if method == "lanczos":
    assert r.min_converged and r.min_eigenvalue == pytest.approx(eigenvalues[0], rel=1e-6)


def test_hutchinson_within_three_standard_errors(cases, xy):
  model, h = cases["cnn"]
  t = HessianAnalyzer(model, *xy, batch_size=64).trace(max_samples=200, tol=1e-9, seed=0)
  assert t.samples == 200 and 0 < t.standard_error < 0.2 * abs(np.trace(h))
  assert abs(t.trace - np.trace(h)) <= 3 * t.standard_error, (t, np.trace(h))


def test_slq_density_integrates_to_one_and_has_mean_trace_over_n(cases, xy):
  model, h = cases["mlp"]
  n, runs = h.shape[0], 20
  d = HessianAnalyzer(model, *xy, batch_size=64).density(num_steps=20, num_runs=runs, seed=5)
  nodes, weights, grid, rho = (np.asarray(d[k]) for k in ("nodes", "weights", "grid", "density"))
  assert abs(weights.sum() - 1) < 1e-12 and (weights >= 0).all()
  assert abs(np.trapezoid(rho, grid) - 1) < 1e-6
  rng = np.random.default_rng(5)  # The start vectors SLQ drew: its mean is exactly their mean zᵀHz / n.
  quad = np.array([z @ h @ z / n for z in (eigensolvers.rademacher(rng, n) for _ in range(runs))])
  np.testing.assert_allclose(weights @ nodes, quad.mean(), rtol=1e-8)
  np.testing.assert_allclose(np.trapezoid(grid * rho, grid), weights @ nodes, rtol=1e-3, atol=1e-6)
  assert abs(weights @ nodes - np.trace(h) / n) <= 3 * quad.std(ddof=1) / np.sqrt(runs)
