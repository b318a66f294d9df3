"""The Hessian evaluator's entry (evaluators/hessian/evaluate.py): the seeded training subset, and the Evaluation
it hands back — every section asked for, non-convergence recorded and warned about, TensorBoard scalars keyed
hessian/..., the density figure — checked against the config it was given and Lanczos' own ordering guarantees
(the numbers themselves against dense Hessians: test_eigensolvers.py, test_hvp.py). Writing the Evaluation to disk
is tests/experiment/test_outputs.py's."""

import json
import logging
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfrobust import data
from tfrobust.evaluators.hessian import evaluate as hessian
from tfrobust.evaluators.hessian.config import HessianConfig

sys.path.insert(0, os.path.dirname(__file__))  # pytest runs with --import-mode=importlib
from hessian_nets import tiny_model, xy_fixture  # noqa: E402,F401 (*_fixture)



def test_subset_is_a_pure_function_of_the_seed():
  np.testing.assert_array_equal(hessian.subset_indices(1000, 100, 3), hessian.subset_indices(1000, 100, 3))
  assert not np.array_equal(hessian.subset_indices(1000, 100, 3), hessian.subset_indices(1000, 100, 4))


def test_evaluate_records_everything_and_non_convergence(xy, caplog):
  ds = data.Dataset("tiny", xy[0], xy[1], xy[0][:0], xy[1][:0], 10)
  model = tiny_model("cnn", seed=5)
  config = HessianConfig(top_k=2, examples=40, max_iter=2, tol=1e-9, trace=True, density=True, input=True,
                         per_layer=True, repeats=2, batch_size=16)
  with caplog.at_level(logging.WARNING):
    ev = hessian.evaluate(model, ds, config, strategy=tf.distribute.get_strategy(), progress=False)
  s = ev.section
  assert set(ev.figures) == {"hessian_density.png"} and ev.examples == {}
  assert s["converged"] is False and "top_eigenvalues" in s["not_converged"]  # Recorded, not raised,
  assert "hessian: top_eigenvalues did not converge to tol=1e-09 within 2 iterations" in caplog.text  # warned.
  assert len(s["top_eigenvalues"]) == 2 and s["examples"] == 40 and s["subset_seed"] == 0
  assert s["top_eigenvalues"][0] >= s["top_eigenvalues"][1] >= s["min_eigenvalue"]  # Lanczos: both ends.
  assert s["min_eigenvalue_converged"] is False and s["min_eigenvalue_residual_bound"] > 0  # After 2 steps.
  assert {"trace", "density", "input_top_eigenvalue", "per_layer", "repeats", "seconds"} <= set(s)
  assert s["trace"]["converged"] is False and "trace" in s["not_converged"]
  assert s["repeats"]["values"][0] == s["top_eigenvalues"] and len(s["repeats"]["std"]) == 2
  (axes,) = ev.figures["hessian_density.png"].axes
  np.testing.assert_allclose(axes.lines[0].get_xdata(), s["density"]["grid"])  # The density it recorded.
  json.dumps(s)
  assert ev.scalars["hessian/top_eigenvalue_0"] == s["top_eigenvalues"][0]
  assert ev.scalars["hessian/top_eigenvalue_1"] == s["top_eigenvalues"][1]
  assert ev.scalars["hessian/min_eigenvalue"] == s["min_eigenvalue"]
  assert ev.scalars["hessian/trace"] == s["trace"]["mean"]
