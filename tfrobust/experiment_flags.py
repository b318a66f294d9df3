"""The flags of one experiment (training plus the evaluators that are installed) and the config they make.

Shared by `tfrobust.main` (one run) and `tfrobust.sweep` (a study of runs), so that a flag file means the same
thing to both.
"""

import importlib

from tfrobust import train_flags

EVALUATORS = ("robustness", "hessian")
_modules = []


def define_flags():
  train_flags.define_flags()
  for name in EVALUATORS:
    try:
      module = importlib.import_module(f"tfrobust.{name}_flags")
    except ImportError:  # evaluator not installed in this build
      continue
    module.define_flags()
    _modules.append((name, module))


def experiment_from_flags(FLAGS):
  from tfrobust.config import ExperimentConfig
  sections = {name: module.config_from_flags(FLAGS, FLAGS.dataset) for name, module in _modules}
  return ExperimentConfig(train=train_flags.train_config_from_flags(FLAGS), **sections)
