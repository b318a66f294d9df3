"""The flags of a training run (cli/flags/train.py) and the TrainConfig they make: with no flags, TrainConfig's own
defaults; every flag reaching its own field; a list flag's bad number refused naming the flag. The flags are
defined on absl's global FLAGS, so they are parsed in one fresh interpreter for the whole file."""

import json

import pytest

from conftest import run_script
from tfrobust.config import TrainConfig

PARSE = r"""
import dataclasses, json
from absl import flags
from tfrobust.cli.flags import train
from tfrobust.errors import UsageError
train.define_flags()
out = {}
for name, args in CASES.items():
  flags.FLAGS.unparse_flags()
  flags.FLAGS(["prog", *args])
  try:
    out[name] = dataclasses.asdict(train.train_config_from_flags(flags.FLAGS))
  except UsageError as e:
    out[name] = {"error": str(e)}
print(json.dumps(out))
"""

# Every field given a value that neither its default nor any other field has.
EVERY_FLAG = {"dataset": "mnist5k", "data_dir": "/data", "model": "lenet", "batchnorm": True, "augment": "crop",
              "batch_size": 96, "lr": 0.125, "lr_scaling": "sqrt", "base_batch_size": 48, "lr_schedule": "step",
              "lr_decay_epochs": (7.0, 9.5), "lr_decay_factor": 0.3, "warmup_epochs": 1.5, "momentum": 0.7,
              "nesterov": True, "weight_decay": 0.002, "epochs": 13, "target_train_loss": 0.35, "seed": 17,
              "jit_compile": True, "deterministic": True, "steps_per_call": 3, "checkpoint_every_steps": 29,
              "checkpoint_every_s": 4.5, "epoch_test_eval": False, "eval_batch_size": 123}
CASES = {
    "none": [],
    "every": [f"--{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in EVERY_FLAG.items()],
    "bad_number": ["--lr_decay_epochs=30,x"],
}


@pytest.fixture(scope="module")
def parsed():
  proc = run_script(f"CASES = {CASES!r}\n{PARSE}", timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


def _config(fields):
  return TrainConfig(**dict(fields, lr_decay_epochs=tuple(fields["lr_decay_epochs"])))


def test_no_flags_give_the_configs_defaults(parsed):
  assert _config(parsed["none"]) == TrainConfig()


def test_every_flag_reaches_its_own_field(parsed):
  assert set(EVERY_FLAG) | {"max_steps"} == set(parsed["every"])  # every field but the study's has a flag
  assert _config(parsed["every"]) == TrainConfig(**EVERY_FLAG)


def test_a_bad_number_in_a_list_flag_names_the_flag(parsed):
  assert parsed["bad_number"] == {"error": "--lr_decay_epochs=30,x: 'x' is not a number"}
