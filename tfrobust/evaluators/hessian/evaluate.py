"""The Hessian evaluator: which training examples the Hessian is measured on, what is measured (config.py), and
the Evaluation it hands back (the "hessian" section, TensorBoard scalars, hessian_density.png). The measuring
itself is analyzer.py's HessianAnalyzer.
"""

import json
import time

import numpy as np
from absl import logging

from tfrobust import io
from tfrobust.evaluators import Evaluation
from tfrobust.evaluators.hessian.analyzer import HessianAnalyzer, count_params
from tfrobust.evaluators.hessian.config import HessianConfig

# The random stream of the subset draw: numpy's seed sequence [seed, SUBSET_STREAM] keeps it apart from the
# start vectors of the solvers, which are seeded by `seed` alone.
SUBSET_STREAM = 7


def subset_indices(num_train, examples, seed):
  """The training examples the Hessian is measured on: a pure function of (num_train, examples, seed), so
  every model of a sweep is measured on the same data. Sorted; all of them when examples >= num_train."""
  if examples >= num_train:
    return np.arange(num_train)
  return np.sort(np.random.default_rng([seed, SUBSET_STREAM]).choice(num_train, size=examples, replace=False))


def top_eigenvalues(model, data, k=1, *, examples=None, subset_seed=0, method="lanczos", max_iter=100,
                  tol=1e-3, batch_size=512, strategy=None):
  """Top-k Hessian eigenvalues of a model trained elsewhere (Keras model or export.LoadedModel).

  `data`: a tfrobust.data.Dataset (its training set, subset as in evaluate) or a pair (x, y) used whole
  (x on the [0, 1] pixel scale). Returns an eigensolvers.EigenResult.
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


def density_figure(density):
  """The smoothed SLQ density (log scale, as PyHessian plots it), as a Figure for the caller to save."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(figsize=(5, 3.5))
  FigureCanvasAgg(fig)
  ax = fig.add_subplot(1, 1, 1)
  ax.semilogy(density["grid"], np.asarray(density["density"]) + 1e-7)
  ax.set_xlabel("eigenvalue")
  ax.set_ylabel("density (SLQ, smoothed)")
  fig.tight_layout()
  return fig


def evaluate(model, dataset, config, *, strategy=None, progress=True):
  """The Hessian Evaluation of a trained model: top-k eigenvalues on a seeded subset of the training set, and
  trace, density, input and per-layer eigenvalues, repeats over subset seeds as asked. Non-convergence is
  recorded and warned about, not raised."""
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
  figures = {}
  if config.density:
    section["density"] = analyzer.density(num_steps=it, num_runs=1, seed=seed)
    figures["hessian_density.png"] = density_figure(section["density"])
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
  scalars = {f"hessian/top_eigenvalue_{i}": lam for i, lam in enumerate(top.eigenvalues)}
  if top.min_eigenvalue is not None:
    scalars["hessian/min_eigenvalue"] = top.min_eigenvalue
  if config.trace:
    scalars["hessian/trace"] = section["trace"]["mean"]
  if config.input:
    scalars["hessian/input_top_eigenvalue"] = section["input_top_eigenvalue"]["mean"]
  brief = {k: v for k, v in section.items() if k != "density"}
  return Evaluation(section=section, scalars=scalars, figures=figures,
                    text=json.dumps({"hessian": io.clean(brief)}, indent=1))
