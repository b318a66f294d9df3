"""`python -m tfrobust.evaluate`: the robustness section of tfrobust.main for any exported SavedModel.

  python -m tfrobust.evaluate --saved_model=runs/x/saved_model --dataset=digits [--split=test] \
      [--attacks=fgsm,pgd --norms=inf,2 --eps=... --pgd_steps=20 ...] [--output=robustness.json]
  python -m tfrobust.evaluate --saved_model=DIR --npz=data.npz   # arrays x [N, H, W(, C)] in [0, 1], y [N]

The model must take images on the [0, 1] scale and return logits (tfrobust.export's signature). With the same
attack flags and data as a `tfrobust.main --attacks=...` run it gives that run's numbers exactly. Prints a table
and the sanity checks; --output=FILE gets the JSON (robustness, robustness_summary, robustness_checks, ...) and
FILE's stem + .png the accuracy-vs-ε plot, both written only once everything has been computed.
Bad input: one line on stderr, exit status 2, nothing written.
"""

import os

from absl import flags

from tfrobust import cli
from tfrobust import robustness_flags
from tfrobust.errors import UsageError

flags.DEFINE_string("saved_model", None, "SavedModel directory (tfrobust.export format: images in [0, 1] -> "
                    "logits).")
flags.DEFINE_string("dataset", None, "Dataset to attack: digits, mnist5k or a tfds name on disk.")
flags.DEFINE_string("data_dir", None, "tfds data directory.")
flags.DEFINE_enum("split", "test", ["test", "train"], "Which split of --dataset.")
flags.DEFINE_string("npz", None, "Instead of --dataset: a .npz with arrays x (images in [0, 1], or uint8) and "
                    "y (integer labels).")
flags.DEFINE_string("output", None, "JSON file for the results (and a .png of accuracy vs ε beside it).")
flags.DEFINE_integer("num_cpu_devices", 0, "Testing aid: mirror over this many logical CPU devices.")
robustness_flags.define_flags()
flags.FLAGS.set_default("attacks", list(robustness_flags.ATTACKS))
FLAGS = flags.FLAGS


def _data():
  if FLAGS.npz:
    from tfrobust import data
    return data.load_npz(FLAGS.npz)
  from tfrobust import data
  dataset = data.load_dataset(FLAGS.dataset, FLAGS.data_dir)
  return (dataset.x_test, dataset.y_test) if FLAGS.split == "test" else (dataset.x_train, dataset.y_train)


def _check_fit(model, x, y):
  from tfrobust import robustness
  try:
    robustness.check_input_shape(model, x.shape[1:])
  except UsageError as e:
    raise UsageError(f"--saved_model={FLAGS.saved_model}: {e}") from None
  classes = int(model(x[:1]).shape[-1])
  if y.max() >= classes:
    raise UsageError(f"labels go up to {int(y.max())} but the model has {classes} classes")


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


def main(argv):
  cli.check_saved_model_flags(argv, FLAGS)
  config = robustness_flags.config_from_flags(FLAGS, FLAGS.dataset or "")
  if config is None:
    raise UsageError("--attacks=: give at least one attack (fgsm, pgd)")
  if FLAGS.output and (os.path.isdir(FLAGS.output) or not FLAGS.output.endswith(".json")):
    raise UsageError(f"--output={FLAGS.output}: must be a .json file name")
  from tfrobust import distribute, export, results, robustness  # TensorFlow works from here on.
  strategy = distribute.make_strategy(FLAGS.num_cpu_devices)
  model = export.LoadedModel(FLAGS.saved_model)
  x, y = _data()
  _check_fit(model, x, y)
  if config.eval_examples is not None:
    x, y = x[:config.eval_examples], y[:config.eval_examples]
  section = robustness.evaluate(model, x, y, config, strategy=strategy, progress=True)
  print(format_table(section))
  if FLAGS.output:
    record = dict(section, saved_model=os.path.abspath(FLAGS.saved_model), versions=results.versions(),
                  data={"dataset": FLAGS.dataset, "split": FLAGS.split if FLAGS.dataset else None,
                        "npz": FLAGS.npz, "examples": len(x)},
                  num_replicas=strategy.num_replicas_in_sync)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    robustness.plot(section["robustness"], os.path.splitext(FLAGS.output)[0] + ".png")
    results.write_json(FLAGS.output, record)
    print(f"-> {FLAGS.output}")


if __name__ == "__main__":
  cli.run_main(main)
