"""HessianAnalyzer (evaluators/hessian/analyzer.py): seeded answers without retracing across subsets, and its
per-layer blocks and input Hessian against dense Hessians (numpy's eigvalsh of tape.jacobian blocks)."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfrobust.evaluators.hessian.analyzer import HessianAnalyzer

sys.path.insert(0, os.path.dirname(__file__))  # pytest runs with --import-mode=importlib
from hessian_nets import cases_fixture, xy_fixture  # noqa: E402,F401 (*_fixture)




def test_same_seed_same_numbers_and_no_retrace(cases, xy):
  model, _ = cases["cnn"]
  a = HessianAnalyzer(model, *xy, batch_size=32)
  first = a.top_eigenvalues(2, method="power", max_iter=50, tol=1e-4, seed=7)
  traces = a.tracing_count
  again = a.on_subset(*xy).top_eigenvalues(2, method="power", max_iter=50, tol=1e-4, seed=7)
  assert first == again
  other = a.top_eigenvalues(2, method="power", max_iter=50, tol=1e-4, seed=8)
  assert other.eigenvalues != first.eigenvalues
  a.top_eigenvalues(2, method="lanczos", max_iter=50, tol=1e-4, seed=7)
  a.on_subset(xy[0][::-1], xy[1][::-1]).hvp(np.ones(a.num_params))
  assert a.tracing_count == traces  # Hundreds of products, a second subset of the same size: no new trace.


def test_per_layer_blocks_and_input_hessian_match_dense(cases, xy):
  model, h = cases["mlp"]
  a = HessianAnalyzer(model, *xy, batch_size=64)
  per_layer = a.per_layer_top_eigenvalues(max_iter=200, tol=1e-9)
  for name, idx in a.layer_groups().items():
    want = np.linalg.eigvalsh(h[np.ix_(idx, idx)])[-1]
    np.testing.assert_allclose(per_layer[name]["top_eigenvalue"], want, rtol=1e-6)
  x, y = xy[0][:4], xy[1][:4]
  got = a.on_subset(x, y).input_top_eigenvalue(max_iter=2000, tol=1e-7)  # Inputs are float32.
  want = []
  for i in range(4):
    xi = tf.constant(x[i:i + 1])
    with tf.GradientTape() as outer:
      outer.watch(xi)
      with tf.GradientTape() as inner:
        inner.watch(xi)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y[i:i + 1], model(xi))
      g = tf.reshape(inner.gradient(loss, xi), [-1])
    hx = np.reshape(outer.jacobian(g, xi), (16, 16))
    want.append(np.linalg.eigvalsh(hx)[-1])
  assert got["converged"]
  np.testing.assert_allclose(got["mean"], np.mean(want), rtol=1e-4)
