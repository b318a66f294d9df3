"""The study's absl flags (--regimes, --batch_sizes, --momenta, --seeds, --budget, --max_epochs, --sweep_dir,
--report_eps) and
the Grid they make (tfrobust/study/grid.py). The run flags of every point are those of tfrobust.cli.flags."""

from absl import flags

from tfrobust import config as config_lib
from tfrobust.cli import numbers
from tfrobust.errors import UsageError
from tfrobust.report import sequential
from tfrobust.study import grid as grid_lib


def define_flags():
  flags.DEFINE_string("sweep_dir", None, "Directory of the study (results.jsonl, trials/, report/); the same "
                      "directory resumes, and one holding another grid is refused.")
  flags.DEFINE_list("regimes", ["fixed_lr", "constant_ratio"],
                    f"Learning-rate regimes: {', '.join(config_lib.REGIMES)} (η fixed, η/B fixed, η/√B fixed).")
  flags.DEFINE_list("batch_sizes", ["16", "32", "64", "128", "256"], "Batch sizes B of the grid.")
  flags.DEFINE_list("momenta", ["0", "0.9"], "Momenta μ of the grid.")
  flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of the grid (error bars are over seeds), or auto: seeds are "
                    "added look by look (--looks, --max_seeds) until every claim is decided, with a group-sequential "
                    "rule that keeps P(supported | claim false) at most 2.5% over all looks (docs/verdicts.md).")
  flags.DEFINE_integer("max_seeds", 24, "--seeds=auto: the most seeds any point gets (at most 200).")
  flags.DEFINE_list("looks", ["3", "6", "12", "24"], "--seeds=auto: the seed counts at which the study is judged "
                    "(strictly ascending; those below --max_seeds, then --max_seeds).")
  # A string, not an enum: a bad value is a UsageError from Grid.validate, like the other grid checks.
  flags.DEFINE_string("budget", "epochs", "What every point gets the same of: epochs (--epochs each; every B sees "
                      "the data equally often), steps (round(epochs · n_train / base_batch_size) SGD updates "
                      "each, so a larger B trains more epochs: Hoffer et al. 2017; warm-up and decay epochs are "
                      "rescaled to fall at the same update) or loss (trained until the cross-entropy over the whole "
                      "training set, measured at each epoch's end, is at most --target_train_loss nats, for at most "
                      "--max_epochs epochs; --epochs is not used).")
  flags.DEFINE_integer("max_epochs", None, "--budget=loss only: the cap in epochs (>= 1); a point that reaches it "
                       "without the target is recorded as not reaching it.")
  flags.DEFINE_float("report_eps", None, "ε (on the [0, 1] scale) at which the report and the HParams dashboard "
                     "compare adversarial accuracy (default: the middle of the ε grid).")
  # A string, parsed by grid_from_flags: a non-integer is a one-line UsageError, not absl's own message.
  flags.DEFINE_string("stack_size", grid_lib.AUTO_STACK, "How many points of one batch size train as one stacked "
                      "computation (grouped convolutions, one batched matmul per dense layer: tfrobust.train.stacked); "
                      "each is then evaluated and recorded as if trained alone. auto: as many as --stack_memory_mb "
                      "holds, up to the points of that batch size and 64 (1 on a CPU for a network without "
                      "convolutions, which gains nothing there); 1: one network at a time.")
  flags.DEFINE_float("stack_memory_mb", 2048.0, "--stack_size=auto: the memory a stack may take (MiB): weights, "
                     "momentum and gradients, and each layer's activations and their gradients at the batch size.")
  flags.DEFINE_bool("trial_progress", False, "Show each trial's per-epoch progress, not one line per trial.")


# What a study does by default that a single run does not (the trial without its overheads): checkpoint by wall
# time, not every epoch; no per-epoch test evaluation (the report reads the training loss history only); no
# SavedModel per trial. Each is a flag of tfrobust.main too: the same values can be given to either.
STUDY_DEFAULTS = {"checkpoint_every_s": 60.0, "epoch_test_eval": False, "export_saved_model": False}


def set_study_defaults(FLAGS=flags.FLAGS):  # pylint: disable=invalid-name
  for name, value in STUDY_DEFAULTS.items():
    FLAGS.set_default(name, value)


def plan_from_flags(FLAGS=flags.FLAGS):  # pylint: disable=invalid-name
  """The sequential plan of --seeds=auto (report.sequential.Plan), or None; UsageError on bad --looks/--max_seeds."""
  if [s.strip().lower() for s in FLAGS.seeds] != ["auto"]:
    return None
  return sequential.make_plan(numbers("looks", FLAGS.looks, int), FLAGS.max_seeds)


def grid_from_flags(FLAGS=flags.FLAGS):  # pylint: disable=invalid-name
  """The Grid the flags ask for (not yet validated); with --seeds=auto, the first look's seeds."""
  plan = plan_from_flags(FLAGS)
  seeds = tuple(range(plan.looks[0])) if plan else numbers("seeds", FLAGS.seeds, int)
  return grid_lib.Grid(regimes=tuple(FLAGS.regimes), batch_sizes=numbers("batch_sizes", FLAGS.batch_sizes, int),
                       momenta=numbers("momenta", FLAGS.momenta), seeds=seeds,
                       budget=FLAGS.budget, target_train_loss=FLAGS.target_train_loss or None,
                       max_epochs=FLAGS.max_epochs, stack_size=_stack_size(FLAGS.stack_size),
                       stack_memory_mb=FLAGS.stack_memory_mb)


def _stack_size(value):
  if value == grid_lib.AUTO_STACK:
    return value
  try:
    return int(value)
  except ValueError:
    raise UsageError(f"--stack_size={value}: {value!r} is not an integer or {grid_lib.AUTO_STACK}") from None
