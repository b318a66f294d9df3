"""The names of everything on disk, in one place (records/ reads and writes them; other modules ask for paths)."""

import os

# A run directory (tfrobust.main --output_dir, or a sweep's trials/<id>/).
HPARAMS_FILE = "hparams.json"  # what the run is: refused when a resume asks for another run
RESULT_FILE = "result.json"  # written once, atomically, at the end
EXAMPLES_FILE = "examples.npz"  # per-example outcomes, written before result.json
FLAGS_FILE = "flags.cfg"
CHECKPOINTS_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
SAVED_MODEL_DIR = "saved_model"

# A sweep directory (tfrobust.sweep --sweep_dir).
SWEEP_FILE = "sweep.json"
RESULTS_FILE = "results.jsonl"
LOCK_FILE = ".lock"
TRIALS_DIR = "trials"
TUNER_DIR = "tuner"
LOOKS_FILE = "looks.json"  # {look: {"seeds", "next"}}: each look's decision of a --seeds=auto study (records/sweep.py)
STACKS_FILE = "stacks.json"  # {stack name: [trial ids]}, in the order the stacks were formed (study/stacks.py)
STACKS_DIR = "stacks"  # STACKS_DIR/NAME/checkpoints: a stack's own checkpoints and state; NAME/handed_off.json


def tuner_dir(look=None):
  """keras-tuner's project directory: one per look of a sequential study (its grid grows look by look)."""
  return TUNER_DIR if look is None else f"{TUNER_DIR}_look{look}"
REPORT_DIR = "report"


def trial_dir(sweep_dir, trial_id):
  """The run directory of one point of a sweep."""
  return os.path.join(sweep_dir, TRIALS_DIR, trial_id)
