"""The robustness evaluator: adversarial accuracy of a trained classifier along a grid of ε (FGSM, PGD, APGD, Square
and the autoattack sequence; L∞, L2),
its summary and its sanity checks, handed back as an Evaluation (tfrobust.evaluators): the section, TensorBoard
scalars and curves, robustness.png and the per-example outcomes; the caller writes them.

Units: images on the [0, 1] pixel scale; ε and the PGD step size on that scale, in the attack's norm; `eps_255`
is ε·255 (pixel levels). Accuracies are fractions in [0, 1].

The attacks are attacks.py, apgd.py and square.py (maths), runner.py (compiled, batched) and sequences.py (their
passes and the ε sweep with the early stop); the checks checks.py; the config and the default ε grids config.py
(TF-free). docs/robustness.md explains the grids, the checks and the cleverhans
problems worked around.
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np
from absl import logging

from tfrobust.evaluators import Evaluation
from tfrobust.evaluators.robustness import checks
from tfrobust.evaluators.robustness.checks import DEEP_RESTARTS_FACTOR, DEEP_STEPS_FACTOR
from tfrobust.evaluators.robustness.config import ATTACKS, NORM_NAMES, NORMS, curve_name
from tfrobust.evaluators.robustness.runner import AttackRunner
from tfrobust.evaluators.robustness.sequences import Budget, bisect, sweep
from tfrobust.models import check_input_shape, predict_classes
from tfrobust.records.run import ExampleCurve


@dataclasses.dataclass(frozen=True)
class Curve:
  """Per-example results of one attack × norm over its ascending ε grid: correct[i, n] for eps[i] and example n,
  with the early stop (sequences.py): monotone in ε, an example fooled at ε is fooled at every larger ε of the
  grid (descending: one the attack fails on at ε counts robust at every smaller ε; ascending: one fooled at ε
  counts fooled at every larger ε).

  step_sizes: PGD's step per ε, FGSM's ε; None where the attack has no fixed step (APGD adapts it, Square
  samples). steps, restarts: as sequences.Budget.reported. attacked: example-passes run per ε (the work).
  """
  attack: str
  norm: str
  eps: Tuple[float, ...]
  step_sizes: Tuple[Optional[float], ...]
  steps: int
  restarts: int
  correct: np.ndarray
  attacked: Tuple[int, ...] = ()
  bisected: Optional[Tuple[np.ndarray, np.ndarray]] = None  # (robust_eps, fool_eps) per example: sequences.bisect

  @property
  def name(self):
    return curve_name(self.attack, self.norm)

  @property
  def accuracy(self):
    return self.correct.mean(axis=1)

  def entries(self):
    """The result.json rows, one per ε."""
    n = self.correct.shape[1]
    return [{"attack": self.attack, "norm": self.norm, "eps": e, "eps_255": round(e * 255, 6), "steps": self.steps,
             "step_size": s, "restarts": self.restarts, "accuracy": float(a), "examples": n}
            for e, s, a in zip(self.eps, self.step_sizes, self.accuracy)]

  def summary(self, clean_accuracy):
    """Area under accuracy vs ε (trapezoid; units ε·accuracy) and its mean height over [0, ε_max]."""
    acc, eps = self.accuracy, np.asarray(self.eps)
    auc = float(np.sum((acc[1:] + acc[:-1]) / 2 * np.diff(eps)))
    return {"auc": auc, "mean_accuracy": auc / eps[-1] if eps[-1] > 0 else float(acc[0]),
            "eps_max": float(eps[-1]), "accuracy_at_eps_max": float(acc[-1]), "clean_accuracy": clean_accuracy}


def measure(model, x, y, config, *, strategy=None, progress=True):
  """Accuracy on adversarial examples for every attack × norm × ε, its summary and its sanity checks.

  model: a Keras model or tfrobust.export.LoadedModel mapping images in [0, 1] to logits (inference mode).
  x: float32 images [N, H, W, C] in [0, 1]; y: integer labels [N]. All N examples are used.
  strategy: a tf.distribute strategy; with several replicas each batch is split over them.
  Returns (section, curves): the JSON-ready section {"accuracy": [rows], "summary": {...}, "checks": {...},
  "config": {...}} and the Curves of the attacks asked for (per-example outcomes; an example fooled at ε counts as
  fooled at every larger ε of the grid, see sequences.py).
  """
  check_input_shape(model, x.shape[1:])
  runner = AttackRunner(model, x, y, batch_size=config.batch_size, seed=config.seed, strategy=strategy,
                        backend=config.backend)
  reference, classes = reference_correct(model, x, y, config.batch_size)
  plan = _plan(config, x.shape[1:])
  tick = _progress(progress)
  clean = runner.run("probe", "inf", on_batch=tick)
  curves = {key: _curve(runner, config, attack, norm, grid, tick, budget, classes)
            for key, attack, norm, budget, grid in plan}
  main = [c for (kind, _), c in curves.items() if kind in config.attacks]
  clean_accuracy = float(clean["correct"].mean())
  section = {"accuracy": [e for c in main for e in c.entries()],
             "summary": {c.name: c.summary(clean_accuracy) for c in main},
             "checks": checks.sanity_checks(config, clean, curves, reference=reference),
             "config": dict(config.hparams(), examples=len(x))}
  return section, main


def reference_correct(model, x, y, batch_size):
  """(whether the model classifies each example right, its number of classes) by models.predict_classes: none of
  the runner's compiled steps, replicas, example indices or reordering, so that `eps0_equals_clean` compares two
  paths."""
  predicted, classes = predict_classes(model, x, batch_size)
  return predicted == np.asarray(y), classes


def _plan(config, input_shape):
  """(key, attack, norm, budget, grid) of every curve: the attacks, the noise baseline, and for the deep check the
  autoattack sequence (key "deep"), with DEEP_STEPS_FACTOR × the APGD steps and DEEP_RESTARTS_FACTOR × its
  restarts when autoattack is already among the attacks (else it would compare the sequence with itself)."""
  plan, budget = [], Budget.of(config)
  for norm in config.norms:
    grid = config.grid(norm, input_shape)
    plan += [((attack, norm), attack, norm, budget, grid) for attack in config.attacks]
    plan.append((("noise", norm), "noise", norm, budget, grid))
    if config.deep_check:
      deep = budget if "autoattack" not in config.attacks else dataclasses.replace(
          budget, apgd_steps=DEEP_STEPS_FACTOR * budget.apgd_steps,
          apgd_restarts=DEEP_RESTARTS_FACTOR * budget.apgd_restarts)
      plan.append((("deep", norm), "autoattack", norm, deep, grid))
  return plan


def _curve(runner, config, attack, norm, grid, on_batch, budget, classes):
  """One attack × norm along its ε grid with the early stop (sequences.sweep), as a Curve."""
  steps, restarts = budget.reported(attack)
  step_sizes = [config.step_size(e, steps) if attack == "pgd" else e if attack in ("fgsm", "noise") else None
                for e in grid]
  correct, attacked = sweep(runner, attack, norm, grid, budget, classes=classes, step_size=config.step_size,
                            on_batch=on_batch, order=config.eps_order)
  bisected = None
  if config.bisection_steps and attack != "noise":
    bisected = bisect(runner, attack, norm, grid, correct, budget, classes=classes, step_size=config.step_size,
                      steps=config.bisection_steps, on_batch=on_batch)
  return Curve(attack, norm, tuple(grid), tuple(step_sizes), steps, restarts, correct, tuple(attacked.tolist()),
               bisected)


def _progress(progress):
  """A callback advancing a Keras progress bar by one batch (the bar the training loop shows), or a no-op. The
  total is not known ahead: the early stop decides how many batches each ε needs."""
  if not progress:
    return lambda: None
  import keras
  print("robustness: attack batches (fewer at each ε as examples are fooled)")
  bar, done = keras.utils.Progbar(None, unit_name="batch"), [0]

  def tick():
    done[0] += 1
    bar.update(done[0])
  return tick


# TensorBoard's accuracy-vs-ε curves (`robustness/curve/<attack>_<norm>`) need an integer step: ε in a fixed unit per norm,
# fine enough that the default grids (docs/robustness.md) never put two ε on one step.
CURVE_STEP_UNITS = {
    "inf": (255 * 4, "quarter pixel levels: step = round(ε·255·4), so 4 is ε = 1/255 and 32 is 8/255"),
    "2": (100, "hundredths of the [0, 1] pixel scale: step = round(ε·100), so 50 is ε = 0.5 in L2"),
}


def curve_step(eps, norm):
  """The TensorBoard step of ε on the `robustness/curve/` tags (see CURVE_STEP_UNITS)."""
  return int(round(eps * CURVE_STEP_UNITS[norm][0]))


def evaluate(model, dataset, config, *, strategy=None, progress=True):
  """The robustness Evaluation of a trained model on the first eval_examples test examples: the section, the
  TensorBoard scalars and curves, robustness.png and the per-example outcomes.

  examples: one records.run.ExampleCurve per attack × norm, monotone in ε (an example fooled at ε counts as fooled
  at every larger ε: the early stop of sequences.py), so its min_fool_eps is the smallest grid ε that fooled it.
  TensorBoard gets `robustness/<attack>_<linf|l2>/eps_<ε>` at step 0 (one number per ε, what the HParams dashboard
  reads) and the curve `robustness/curve/<attack>_<linf|l2>`: adversarial accuracy with ε as the step, in quarter
  pixel levels for L∞ (step = round(ε·1020): 4 = 1/255) and in hundredths for L2 (step = round(ε·100)).
  """
  if not config.dataset:
    config = dataclasses.replace(config, dataset=dataset.name)
  n = len(dataset.x_test) if config.eval_examples is None else min(config.eval_examples, len(dataset.x_test))
  section, curves = measure(model, dataset.x_test[:n], dataset.y_test[:n], config, strategy=strategy,
                            progress=progress)
  scalars = {f"robustness/{curve_name(e['attack'], e['norm'])}/eps_{e['eps']:g}": e["accuracy"]
             for e in section["accuracy"]}
  return Evaluation(
      section=section, scalars=scalars, curves=tensorboard_curves(section["accuracy"]),
      figures={"robustness.png": figure(section["accuracy"])},
      examples={(c.attack, c.norm): ExampleCurve(c.attack, c.norm, np.asarray(c.eps), c.correct,
                                                 *(c.bisected or (None, None))) for c in curves},
      text=format_table(section))


def format_table(section):
  """The robustness rows, summaries and checks as aligned text."""
  lines = [f"{'attack':<10} {'norm':<4} {'eps':>8} {'eps*255':>8} {'steps':>5} {'step':>8} {'restarts':>8} "
           f"{'accuracy':>8}"]
  for e in section["accuracy"]:
    step = "-" if e["step_size"] is None else f"{e['step_size']:.4g}"
    lines.append(f"{e['attack']:<10} {e['norm']:<4} {e['eps']:>8.4g} {e['eps_255']:>8.4g} {e['steps']:>5} "
                 f"{step:>8} {e['restarts']:>8} {e['accuracy']:>8.4f}")
  for name, summary in section["summary"].items():
    lines.append(f"{name}: area under accuracy vs ε {summary['auc']:.4g} (mean accuracy "
                 f"{summary['mean_accuracy']:.4f} over [0, {summary['eps_max']:g}])")
  for name, check in section["checks"].items():
    lines.append(f"{'PASS' if check['passed'] else 'FAIL'} {name}: {check['detail']}")
  return "\n".join(lines)


def tensorboard_curves(entries):
  """{`robustness/curve/<name>`: ((step, accuracy), ...)} with ε as the step (CURVE_STEP_UNITS); an ε whose step
  another ε of the grid already took is left out with a warning."""
  out = {}
  for e in entries:
    name = curve_name(e["attack"], e["norm"])
    series = out.setdefault(f"robustness/curve/{name}", {})
    step = curve_step(e["eps"], e["norm"])
    if step in series:
      logging.warning("TensorBoard curve %s: ε = %g shares step %d with another ε; only the first is drawn",
                      name, e["eps"], step)
      continue
    series[step] = e["accuracy"]
  return {tag: tuple(sorted(series.items())) for tag, series in out.items()}


def figure(entries):
  """Accuracy vs ε, one panel per norm and one line per attack (a Figure; the caller saves it)."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  norms = sorted({e["norm"] for e in entries}, key=NORMS.index)
  fig = Figure(figsize=(5 * len(norms), 4))
  FigureCanvasAgg(fig)
  for i, norm in enumerate(norms):
    ax = fig.add_subplot(1, len(norms), i + 1)
    for attack in ATTACKS:
      rows = [e for e in entries if e["norm"] == norm and e["attack"] == attack]
      if rows:
        ax.plot([e["eps"] for e in rows], [e["accuracy"] for e in rows], marker="o", label=curve_name(attack, norm))
    ax.set(xlabel=f"ε ({NORM_NAMES[norm]}, [0, 1] pixel scale)", ylabel="accuracy", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend()
  fig.tight_layout()
  return fig
