"""What is measured about a trained network besides its clean accuracy: the one registry of evaluators, and the
one protocol they follow (big_vision's): an evaluator gets a model, the data and its config, and hands back an
`Evaluation` — one section for result.json, TensorBoard scalars keyed `<name>/...`, figures and per-example
outcomes. It never receives a writer or a directory: the experiment (tfrobust.experiment) and the eval-only command
(tfrobust.cli.evaluate) write whatever any evaluator returns, the same way.

Each evaluator `name` is a package tfrobust/evaluators/<name>/ with
  config.py    its frozen config (TF-free, absl-free), the class named in REGISTRY, with validate() and hparams();
  evaluate.py  evaluate(model, dataset, config, *, strategy, progress) -> Evaluation;
and its flags in tfrobust/cli/flags/<name>.py (define_flags(), config_from_flags(FLAGS, dataset) -> config or None
when it is not asked for), which the cli layer finds by the evaluator's name. Adding an evaluator is those three
files and one line in REGISTRY (CONTRIBUTING.md walks through it; tests/evaluators/test_registry.py proves it
with a toy evaluator).

Importing this module loads only the configs (no TensorFlow); `evaluate` imports the evaluator itself.
"""

import dataclasses
import importlib
from typing import Any, Dict, Tuple

from tfrobust.evaluators.hessian.config import HessianConfig
from tfrobust.evaluators.robustness.config import RobustnessConfig


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """What one evaluator measured, for the caller to write.

  section:  result.json[name], JSON-ready.
  scalars:  {tag: value} for TensorBoard at step 0; every tag starts with "<name>/".
  curves:   {tag: ((step, value), ...)} TensorBoard series whose step is not training time (e.g. ε); "<name>/..." too.
  figures:  {file name: matplotlib Figure}, drawn but not saved (e.g. {"robustness.png": fig}).
  examples: {(attack, norm): tfrobust.records.run.ExampleCurve}: per-example outcomes for examples.npz.
  text:     a few lines for a person (what the eval-only command prints).
  """
  section: Dict[str, Any]
  scalars: Dict[str, float] = dataclasses.field(default_factory=dict)
  curves: Dict[str, Tuple[Tuple[int, float], ...]] = dataclasses.field(default_factory=dict)
  figures: Dict[str, Any] = dataclasses.field(default_factory=dict)
  examples: Dict[Tuple[str, str], Any] = dataclasses.field(default_factory=dict)
  text: str = ""


@dataclasses.dataclass(frozen=True)
class Evaluator:
  """One entry of the registry: the section name (in ExperimentConfig.evaluators and in result.json) and the config
  class; its `evaluate` lives in tfrobust/evaluators/<name>/evaluate.py."""
  name: str
  config_class: type
  module: str = ""  # the module with evaluate(); default tfrobust.evaluators.<name>.evaluate

  def evaluate(self, model, dataset, config, *, strategy=None, progress=True) -> Evaluation:
    module = importlib.import_module(self.module or f"tfrobust.evaluators.{self.name}.evaluate")
    evaluation = module.evaluate(model, dataset, config, strategy=strategy, progress=progress)
    bad = [tag for tag in (*evaluation.scalars, *evaluation.curves) if not tag.startswith(self.name + "/")]
    if bad:
      raise ValueError(f"evaluator {self.name!r}: TensorBoard tags must start with {self.name + '/'!r}: {bad[:3]}")
    return evaluation


# In the order they run after training (and appear in result.json).
REGISTRY = (
    Evaluator("robustness", RobustnessConfig),
    Evaluator("hessian", HessianConfig),
)


def names():
  return tuple(e.name for e in REGISTRY)


def get(name):
  """The registered evaluator called `name`; ValueError naming the registered ones otherwise."""
  for evaluator in REGISTRY:
    if evaluator.name == name:
      return evaluator
  raise ValueError(f"unknown evaluator {name!r}; registered: {', '.join(names())}")


def sections(experiment):
  """[(evaluator, config)] of the evaluators `experiment` asks for, in registry order; ValueError for a section
  that names no registered evaluator or holds another evaluator's config."""
  for name, config in experiment.evaluators.items():
    evaluator = get(name)
    if config is not None and not isinstance(config, evaluator.config_class):
      raise ValueError(f"evaluator {name!r}: expected a {evaluator.config_class.__name__}, got "
                       f"{type(config).__name__}")
  return [(e, experiment.section(e.name)) for e in REGISTRY if experiment.section(e.name) is not None]


def settings(experiment):
  """{name: JSON-ready settings or None} for every registered evaluator: what a run or a study records of its
  evaluators, so that a directory measured with other settings is refused."""
  return {e.name: (None if experiment.section(e.name) is None else experiment.section(e.name).hparams())
          for e in REGISTRY}
