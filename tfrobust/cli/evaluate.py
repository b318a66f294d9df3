"""Evaluators on an exported SavedModel, without training: every registered evaluator of `tfrobust.main`, on any
model in tfrobust.export's format (images on the [0, 1] scale -> logits).

  python -m tfrobust.evaluate --saved_model=runs/x/saved_model --dataset=digits [--split=test] \
      [--attacks=fgsm,pgd --norms=inf,2 --eps=... --pgd_steps=20 ...] [--hessian_top_k=3 ...] [--output=DIR]
  ... --npz=data.npz instead of --dataset: arrays x [N, H, W(, C)] in [0, 1] (or uint8), y [N]

`--attacks` defaults to fgsm,pgd; the Hessian runs with --hessian_top_k >= 1. `python -m tfrobust.hessian` is the
same command with --attacks empty and --hessian_top_k=1 by default (docs/hessian.md). Each evaluator prints its
summary; --output=DIR gets evaluation.json (every section, the data and the versions), each evaluator's figures and
examples.npz (per-example outcomes), written as a run writes them. Robustness is measured on --split of --dataset
(the test set by default), the Hessian on its training set (the Hessian of the training loss); a --npz is used
whole by both. With the same flags and data as a `tfrobust.main` run it gives that run's numbers exactly.
Nothing is written until everything is computed; bad input: one line on stderr, exit status 2, nothing written.
"""

import dataclasses
import os

from absl import flags

from tfrobust import cli
from tfrobust import evaluators
from tfrobust import io
from tfrobust.cli.flags import evaluator_flags
from tfrobust.config import ExperimentConfig
from tfrobust.errors import UsageError
from tfrobust.records import names

FLAGS = flags.FLAGS
EVALUATION_FILE = "evaluation.json"
# `python -m tfrobust.<command>`: the flag defaults that differ; everything else is one command.
COMMAND_DEFAULTS = {"evaluate": {"attacks": ["fgsm", "pgd"]}, "hessian": {"hessian_top_k": 1}}


def define_flags(command):
  flags.DEFINE_string("saved_model", None, "SavedModel directory (tfrobust.export format: images in [0, 1] -> "
                      "logits, variables reachable).")
  flags.DEFINE_string("dataset", None, "Dataset: digits, mnist5k or a tfds name on disk.")
  flags.DEFINE_string("data_dir", None, "tfds data directory.")
  flags.DEFINE_enum("split", "test", ["test", "train"], "Which split of --dataset the attacks use (the Hessian is "
                    "always measured on the training set).")
  flags.DEFINE_string("npz", None, "Instead of --dataset: a .npz with arrays x (images in [0, 1], or uint8) and "
                      "y (integer labels).")
  flags.DEFINE_string("output", None, f"A directory for {EVALUATION_FILE}, the figures and {names.EXAMPLES_FILE}.")
  flags.DEFINE_integer("num_cpu_devices", 0, "Testing aid: mirror over this many logical CPU devices.")
  for evaluator in evaluators.REGISTRY:
    evaluator_flags(evaluator).define_flags()
  for name, value in COMMAND_DEFAULTS[command].items():
    FLAGS.set_default(name, value)


def _experiment():
  configs = {e.name: evaluator_flags(e).config_from_flags(FLAGS, FLAGS.dataset or "") for e in evaluators.REGISTRY}
  configs = {name: config for name, config in configs.items() if config is not None}
  if not configs:
    raise UsageError("nothing to measure: give --attacks and/or --hessian_top_k >= 1")
  if FLAGS.output and os.path.exists(FLAGS.output) and not os.path.isdir(FLAGS.output):
    raise UsageError(f"--output={FLAGS.output}: must be a directory")
  return ExperimentConfig(evaluators=configs).validate()


def _data():
  """The Dataset the evaluators see, as in a training run: its training set is where the Hessian is measured, its
  test set what the attacks use (--split of --dataset; a --npz serves as both)."""
  from tfrobust import data
  if FLAGS.npz:
    x, y = data.load_npz(FLAGS.npz)
    return data.Dataset("npz", x, y, x, y, int(y.max()) + 1)
  dataset = data.load_dataset(FLAGS.dataset, FLAGS.data_dir)
  if FLAGS.split == "train":
    dataset = dataclasses.replace(dataset, x_test=dataset.x_train, y_test=dataset.y_train)
  return dataset


def _check_fit(model, dataset, experiment):
  """The model takes these images and has a class for every label; each evaluator's settings fit model and data.
  Checked before any work: bad input writes nothing and wastes no time."""
  from tfrobust import models
  from tfrobust.evaluators.hessian.analyzer import count_params
  x, y = dataset.x_test, dataset.y_test
  try:
    models.check_input_shape(model, x.shape[1:])
  except UsageError as e:
    raise UsageError(f"--saved_model={FLAGS.saved_model}: {e}") from None
  classes = int(model(x[:1]).shape[-1])
  if y.max() >= classes:
    raise UsageError(f"labels go up to {int(y.max())} but the model has {classes} classes")
  hessian = experiment.section("hessian")
  if hessian is not None:
    if not model.trainable_variables:
      raise UsageError(f"--saved_model={FLAGS.saved_model}: its variables are not reachable, cannot differentiate")
    hessian.validate_against(count_params(model), len(dataset.x_train))


def main(argv):
  cli.check_saved_model_flags(argv, FLAGS)
  experiment = _experiment()
  from tfrobust import distribute, export  # TensorFlow works from here on.
  from tfrobust.experiment import outputs
  strategy = distribute.make_strategy(FLAGS.num_cpu_devices)
  model = export.LoadedModel(FLAGS.saved_model)
  dataset = _data()
  _check_fit(model, dataset, experiment)
  evaluations = {e.name: e.evaluate(model, dataset, config, strategy=strategy, progress=False)
                 for e, config in evaluators.sections(experiment)}
  for evaluation in evaluations.values():
    print(evaluation.text)
  if not FLAGS.output:
    return
  os.makedirs(FLAGS.output, exist_ok=True)
  record = dict(outputs.sections(evaluations), saved_model=os.path.abspath(FLAGS.saved_model),
                versions=io.versions(), num_replicas=strategy.num_replicas_in_sync,
                data={"dataset": dataset.name, "split": FLAGS.split if FLAGS.dataset else None, "npz": FLAGS.npz,
                      "num_classes": dataset.num_classes, "test_examples": len(dataset.x_test),
                      "train_examples": len(dataset.x_train)})
  outputs.write_figures(evaluations, FLAGS.output)
  clean = outputs.clean_correct(model, dataset.x_test, dataset.y_test, batch_size=1000)
  outputs.write_examples(evaluations, FLAGS.output, clean)
  path = io.write_json(os.path.join(FLAGS.output, EVALUATION_FILE), record)
  print(f"-> {path}")


def run(command):
  """`python -m tfrobust.<command>`: defines the flags with that command's defaults, then runs main."""
  if command not in COMMAND_DEFAULTS:
    raise ValueError(f"command={command!r}: one of {', '.join(COMMAND_DEFAULTS)}")
  define_flags(command)
  cli.run_main(main, doc=__doc__)
