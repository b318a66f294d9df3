"""Evaluators on an exported SavedModel, without training: the robustness and Hessian sections of
`tfrobust.main` for any model in tfrobust.export's format (images on the [0, 1] scale -> logits).

  python -m tfrobust.evaluate --saved_model=runs/x/saved_model --dataset=digits [--split=test] \
      [--attacks=fgsm,pgd --norms=inf,2 --eps=... --pgd_steps=20 ...] [--hessian_top_k=3 ...] [--output=FILE.json]
  python -m tfrobust.hessian --saved_model=runs/x/saved_model --dataset=digits --hessian_top_k=3 \
      [--hessian_trace --hessian_density ...] [--output=DIR]
  ... --npz=data.npz instead of --dataset: arrays x [N, H, W(, C)] in [0, 1] (or uint8), y [N]

Both commands are this one CLI with every registered evaluator's flags; they differ in defaults and output:
  tfrobust.evaluate  --attacks defaults to fgsm,pgd (the Hessian runs with --hessian_top_k >= 1). Prints the
                     robustness table and checks; --output=FILE.json gets every section (FILE's stem + .png the
                     accuracy-vs-ε plot, hessian_density.png beside it with --hessian_density).
  tfrobust.hessian   --hessian_top_k defaults to 1 (robustness runs with --attacks). Prints the sections as JSON
                     (without the density arrays); --output=DIR gets hessian.json (robustness.json and .png) and
                     hessian_density.png.
Robustness is measured on --split of --dataset (the test set by default), the Hessian on its training set (the
Hessian of the training loss); a --npz is used whole by both. With the same flags and data as a
`tfrobust.main` run it gives that run's numbers exactly. Nothing is written until everything is computed; bad
input: one line on stderr, exit status 2, nothing written.
"""

import dataclasses
import json
import os

from absl import flags

from tfrobust import cli
from tfrobust import evaluators
from tfrobust import io
from tfrobust.cli.flags import evaluator_flags
from tfrobust.errors import UsageError
from tfrobust.evaluators.robustness.config import ATTACKS

FLAGS = flags.FLAGS
COMMANDS = ("evaluate", "hessian")  # `python -m tfrobust.<command>`


def define_flags(command):
  flags.DEFINE_string("saved_model", None, "SavedModel directory (tfrobust.export format: images in [0, 1] -> "
                      "logits, variables reachable).")
  flags.DEFINE_string("dataset", None, "Dataset: digits, mnist5k or a tfds name on disk.")
  flags.DEFINE_string("data_dir", None, "tfds data directory.")
  flags.DEFINE_enum("split", "test", ["test", "train"], "Which split of --dataset the attacks use (the Hessian is "
                    "always measured on the training set).")
  flags.DEFINE_string("npz", None, "Instead of --dataset: a .npz with arrays x (images in [0, 1], or uint8) and "
                      "y (integer labels).")
  flags.DEFINE_string("output", None, "tfrobust.evaluate: a .json file for every section (and a .png of accuracy "
                      "vs ε beside it); tfrobust.hessian: a directory for hessian.json and hessian_density.png.")
  flags.DEFINE_integer("num_cpu_devices", 0, "Testing aid: mirror over this many logical CPU devices.")
  for evaluator in evaluators.REGISTRY:
    evaluator_flags(evaluator).define_flags()
  if command == "evaluate":
    FLAGS.set_default("attacks", list(ATTACKS))
  else:
    FLAGS.set_default("hessian_top_k", 1)


def _configs():
  configs = {e.name: evaluator_flags(e).config_from_flags(FLAGS, FLAGS.dataset or "") for e in evaluators.REGISTRY}
  configs = {name: config for name, config in configs.items() if config is not None}
  if not configs:
    raise UsageError(f"nothing to measure: give --attacks ({', '.join(ATTACKS)}) and/or --hessian_top_k >= 1")
  return configs


def _check_output(command):
  if not FLAGS.output:
    return
  if command == "evaluate" and (os.path.isdir(FLAGS.output) or not FLAGS.output.endswith(".json")):
    raise UsageError(f"--output={FLAGS.output}: must be a .json file name")
  if command == "hessian" and os.path.exists(FLAGS.output) and not os.path.isdir(FLAGS.output):
    raise UsageError(f"--output={FLAGS.output}: must be a directory")


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


def _check_fit(model, dataset, configs):
  """The model takes these images and has a class for every label; the Hessian settings fit model and data. Checked
  before any work: bad input writes nothing and wastes no time."""
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
  if "hessian" in configs:
    if not model.trainable_variables:
      raise UsageError(f"--saved_model={FLAGS.saved_model}: its variables are not reachable, cannot differentiate")
    configs["hessian"].validate_against(count_params(model), len(dataset.x_train))


def format_table(section):
  """The robustness rows and checks as aligned text."""
  lines = [f"{'attack':<6} {'norm':<4} {'eps':>8} {'eps*255':>8} {'steps':>5} {'step':>8} {'restarts':>8} "
           f"{'accuracy':>8}"]
  for e in section["robustness"]:
    lines.append(f"{e['attack']:<6} {e['norm']:<4} {e['eps']:>8.4g} {e['eps_255']:>8.4g} {e['steps']:>5} "
                 f"{e['step_size']:>8.4g} {e['restarts']:>8} {e['accuracy']:>8.4f}")
  for name, summary in section["robustness_summary"].items():
    lines.append(f"{name}: area under accuracy vs ε {summary['auc']:.4g} (mean accuracy "
                 f"{summary['mean_accuracy']:.4f} over [0, {summary['eps_max']:g}])")
  for name, check in section["robustness_checks"].items():
    lines.append(f"{'PASS' if check['passed'] else 'FAIL'} {name}: {check['detail']}")
  return "\n".join(lines)


def _brief(sections):
  """The sections without the density arrays, for printing."""
  out = dict(sections)
  if "hessian" in out:
    out["hessian"] = {k: v for k, v in out["hessian"].items() if k != "density"}
  return out


def main(argv, *, command):
  cli.check_saved_model_flags(argv, FLAGS)
  configs = _configs()
  _check_output(command)
  from tfrobust import distribute, export  # TensorFlow works from here on.
  from tfrobust.config import ExperimentConfig
  strategy = distribute.make_strategy(FLAGS.num_cpu_devices)
  model = export.LoadedModel(FLAGS.saved_model)
  dataset = _data()
  _check_fit(model, dataset, configs)
  sections = {}
  for evaluator, config in evaluators.sections(ExperimentConfig(evaluators=configs)):
    # Files are written below, once everything is computed; the progress bar only where stdout is not JSON.
    sections.update(evaluator.run_section(model, dataset, config, strategy=strategy, output_dir=None, writer=None,
                                          progress=command == "evaluate"))
  if command == "evaluate":
    if "robustness" in sections:
      print(format_table(sections))
    if "hessian" in sections:
      print(json.dumps(io.clean(_brief({"hessian": sections["hessian"]})), indent=1))
  else:
    print(json.dumps(io.clean(_brief(sections)), indent=1))
  if FLAGS.output:
    _write(command, sections, strategy)


def _write(command, sections, strategy):
  """Every output file, once everything is computed."""
  from tfrobust.evaluators.hessian import evaluate as hessian
  from tfrobust.evaluators.robustness import evaluate as robustness
  examples = (sections.get("robustness_config") or {}).get("examples")
  if command == "evaluate":
    out_dir = os.path.dirname(os.path.abspath(FLAGS.output))
    os.makedirs(out_dir, exist_ok=True)
    record = dict(sections, saved_model=os.path.abspath(FLAGS.saved_model), versions=io.versions(),
                  data={"dataset": FLAGS.dataset, "split": FLAGS.split if FLAGS.dataset else None,
                        "npz": FLAGS.npz, "examples": examples},
                  num_replicas=strategy.num_replicas_in_sync)
    robustness_png = os.path.splitext(FLAGS.output)[0] + ".png"
    json_path = FLAGS.output
  else:
    out_dir = FLAGS.output
    os.makedirs(out_dir, exist_ok=True)
    robustness_png = os.path.join(out_dir, "robustness.png")
  if "robustness" in sections:
    robustness.plot(sections["robustness"], robustness_png)
  if "density" in sections.get("hessian", {}):
    hessian.plot_density(sections["hessian"]["density"], os.path.join(out_dir, "hessian_density.png"))
  if command == "evaluate":
    io.write_json(json_path, record)
    print(f"-> {json_path}")
  else:
    for name in evaluators.NAMES:  # NAME.json: the keys of that section
      keys = [k for k in sections if k == name or k.startswith(name + "_")]
      if keys:
        io.write_json(os.path.join(out_dir, f"{name}.json"), {k: sections[k] for k in keys})


def run(command):
  """`python -m tfrobust.<command>`: defines the flags with that command's defaults, then runs main."""
  if command not in COMMANDS:
    raise ValueError(f"command={command!r}: one of {', '.join(COMMANDS)}")
  define_flags(command)
  cli.run_main(lambda argv: main(argv, command=command), doc=__doc__)
