"""`python -m tfrobust.hessian`: the Hessian section for a SavedModel trained elsewhere.

  python -m tfrobust.hessian --saved_model=runs/x/saved_model --dataset=digits --hessian_top_k=3 \
      [--hessian_trace --hessian_density --output=DIR]
  python -m tfrobust.hessian --saved_model=DIR --npz=data.npz   # arrays x [N, H, W, C] in [0, 1], y [N]

Writes DIR/hessian.json (and hessian_density.png) when --output is given, and prints the section (without the
density arrays) as JSON. Bad input (checked before anything is written): one line on stderr, exit status 2,
through tfrobust.cli.run_main.
"""

import json
import os

from absl import flags

from tfrobust import cli
from tfrobust import hessian_flags
from tfrobust.errors import UsageError

flags.DEFINE_string("saved_model", None, "SavedModel directory (tfrobust.export format: images in [0, 1] "
                    "-> logits, variables reachable).")
flags.DEFINE_string("dataset", None, "Dataset whose training set the Hessian is measured on (digits, "
                    "mnist5k or a tfds name on disk).")
flags.DEFINE_string("data_dir", None, "tfds data directory.")
flags.DEFINE_string("npz", None, "Instead of --dataset: a .npz with arrays x (images, [0, 1] or uint8) and "
                    "y (int labels).")
flags.DEFINE_string("output", None, "Directory for hessian.json and hessian_density.png.")
hessian_flags.define_flags()
flags.FLAGS.set_default("hessian_top_k", 1)
FLAGS = flags.FLAGS


def _load_npz(path):
  from tfrobust import data
  x, y = data.load_npz(path)
  return data.Dataset("npz", x, y, x[:0], y[:0], int(y.max()) + 1)


def _load(model_dir):
  from tfrobust import data, export
  model = export.LoadedModel(model_dir)
  dataset = _load_npz(FLAGS.npz) if FLAGS.npz else data.load_dataset(FLAGS.dataset, FLAGS.data_dir)
  if tuple(model.input_shape[1:]) != tuple(dataset.input_shape):
    raise UsageError(f"--saved_model={model_dir}: takes images {tuple(model.input_shape[1:])}, the data has "
                     f"{tuple(dataset.input_shape)}")
  if not model.trainable_variables:
    raise UsageError(f"--saved_model={model_dir}: its variables are not reachable, cannot differentiate")
  return model, dataset


def main(argv):
  cli.check_saved_model_flags(argv, FLAGS)
  config = hessian_flags.config_from_flags(FLAGS, FLAGS.dataset or "npz")
  if config is None:
    raise UsageError("--hessian_top_k=0: must be >= 1")
  from tfrobust import distribute, hessian
  model, dataset = _load(FLAGS.saved_model)
  config.validate_against(hessian.count_params(model), len(dataset.x_train))  # Before anything is written.
  if FLAGS.output:
    os.makedirs(FLAGS.output, exist_ok=True)
  section = hessian.run_section(model, dataset, config, strategy=distribute.make_strategy(),
                                output_dir=FLAGS.output, writer=None, progress=True)
  if FLAGS.output:
    with open(os.path.join(FLAGS.output, "hessian.json"), "w") as f:
      json.dump(section, f, indent=1)
  brief = {k: v for k, v in section["hessian"].items() if k != "density"}
  print(json.dumps({"hessian": brief}, indent=1))


def run():
  cli.run_main(main)


if __name__ == "__main__":
  run()
