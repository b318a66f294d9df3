"""The flags of one experiment: training plus every registered evaluator (tfrobust.evaluators.REGISTRY), and the
ExperimentConfig they make.

Shared by `tfrobust.main` (one run) and `tfrobust.sweep` (a study of runs), so that a flag file means the same
thing to both. An evaluator's flags module is imported without a safety net: if it is missing or broken, the
entry point fails with that ImportError instead of quietly running without the evaluator.
"""

import importlib

from tfrobust import evaluators
from tfrobust.config import ExperimentConfig
from tfrobust.cli.flags import train


def evaluator_flags(evaluator):
  """The flags module of a registered evaluator: tfrobust/cli/flags/<name>.py, found by the evaluator's name
  here in the cli layer (the registry below knows nothing of flags)."""
  return importlib.import_module(f"{__name__}.{evaluator.name}")


def define_flags():
  train.define_flags()
  for evaluator in evaluators.REGISTRY:
    evaluator_flags(evaluator).define_flags()


def experiment_from_flags(FLAGS):  # pylint: disable=invalid-name
  sections = {e.name: evaluator_flags(e).config_from_flags(FLAGS, FLAGS.dataset) for e in evaluators.REGISTRY}
  return ExperimentConfig(train=train.train_config_from_flags(FLAGS),
                          evaluators={name: cfg for name, cfg in sections.items() if cfg is not None},
                          export_saved_model=FLAGS.export_saved_model)
