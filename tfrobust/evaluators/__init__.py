"""What is measured about a trained network besides its clean accuracy: the one registry of evaluators.

Every part that deals with evaluators goes through `REGISTRY` — the run (tfrobust.train.run), the study
(tfrobust.study.runner), the flags (tfrobust.cli.flags) and the eval-only CLI (tfrobust.cli.evaluate) — so an
evaluator is added in one line here. Each evaluator `name` is a package tfrobust/evaluators/<name>/ with
  config.py    its frozen config (TF-free, absl-free), the class named below;
  evaluate.py  run_section(model, dataset, config, *, strategy, output_dir, writer, progress) -> dict, the
               keys it adds to result.json;
and its flags live in tfrobust/cli/flags/<name>.py (define_flags(), config_from_flags(FLAGS, dataset) -> config
or None when the evaluator is not asked for). Nothing is imported lazily behind a try/except: a broken
evaluator fails loudly where it is first used instead of silently dropping its flags.

Importing this module loads only the configs (no TensorFlow); `run_section` imports the evaluator itself.
"""

import dataclasses
import importlib

from tfrobust.evaluators.hessian.config import HessianConfig
from tfrobust.evaluators.robustness.config import RobustnessConfig


@dataclasses.dataclass(frozen=True)
class Evaluator:
  """One entry of the registry: the section name (in ExperimentConfig.evaluators and in result.json), the
  config class, and the modules that run it and define its flags."""
  name: str
  config_class: type

  @property
  def module(self):
    """The module with run_section."""
    return f"tfrobust.evaluators.{self.name}.evaluate"

  @property
  def flags_module(self):
    """The module with define_flags and config_from_flags (read by tfrobust.cli only)."""
    return f"tfrobust.cli.flags.{self.name}"

  def run_section(self, model, dataset, config, **kwargs):
    return importlib.import_module(self.module).run_section(model, dataset, config, **kwargs)


# In the order they run after training (and appear in result.json).
REGISTRY = (
    Evaluator("robustness", RobustnessConfig),
    Evaluator("hessian", HessianConfig),
)
NAMES = tuple(e.name for e in REGISTRY)


def get(name):
  """The registered evaluator called `name`; ValueError naming the registered ones otherwise."""
  for evaluator in REGISTRY:
    if evaluator.name == name:
      return evaluator
  raise ValueError(f"unknown evaluator {name!r}; registered: {', '.join(NAMES)}")


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
