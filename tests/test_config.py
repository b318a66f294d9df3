"""The frozen configs (config.py) against the rules they state: every bad TrainConfig value refused naming its
flag and value, checks against the training set, the peak learning rate of each batch-size scaling (η, η·B/B₀,
η·√(B/B₀)), hparams() holding what defines a run and nothing of where or how often it saves, and
ExperimentConfig.validate checking training and every evaluator section (no TensorFlow)."""

import dataclasses
import math
import re

import pytest

from tfrobust import config as config_lib
from tfrobust.config import ExperimentConfig, TrainConfig
from tfrobust.errors import UsageError
from tfrobust.evaluators.hessian.config import HessianConfig
from tfrobust.evaluators.robustness.config import RobustnessConfig

# Run settings: where and how often a run saves or measures along the way, never its trained weights.
RUN_SETTINGS = {"data_dir", "steps_per_call", "checkpoint_every_steps", "checkpoint_every_s", "epoch_test_eval",
                "eval_batch_size"}


@pytest.mark.parametrize("field, value", [
    ("lr", 0.0), ("lr", -1.0), ("lr", math.nan), ("lr", math.inf), ("batch_size", 0), ("base_batch_size", 0),
    ("epochs", 0), ("target_train_loss", -0.5), ("target_train_loss", math.nan), ("momentum", 1.0),
    ("momentum", -0.1), ("weight_decay", -1e-4), ("weight_decay", math.inf), ("model", "nosuchmodel"),
    ("augment", "rotate"), ("lr_scaling", "cubic"), ("lr_schedule", "wavy"), ("lr_decay_epochs", (0.0,)),
    ("lr_decay_factor", 0.0), ("lr_decay_factor", 1.5), ("warmup_epochs", -1.0), ("warmup_epochs", 60.0),
    ("steps_per_call", 0), ("checkpoint_every_steps", -1), ("checkpoint_every_s", -1.0), ("eval_batch_size", 0)])
def test_each_bad_value_names_its_flag(field, value):
  with pytest.raises(UsageError, match="^" + re.escape(f"--{field}={value}:")):
    TrainConfig(**{field: value}).validate()


def test_combinations_and_the_training_set_name_the_flag():
  with pytest.raises(UsageError, match=r"^--lr_decay_epochs=\(\): the step schedule needs"):
    TrainConfig(lr_schedule="step").validate()
  with pytest.raises(UsageError, match="^--target_train_loss=0.5: a loss target and --max_steps"):
    TrainConfig(target_train_loss=0.5, max_steps=10).validate()
  assert TrainConfig().validate() == TrainConfig()  # the defaults are valid, and validate hands the config back
  with pytest.raises(UsageError, match="^--batch_size=1438: larger than the training set"):
    TrainConfig(batch_size=1438).validate_against(1437)
  with pytest.raises(UsageError, match="^--batch_size=30: must be divisible by the 4 replicas"):
    TrainConfig(batch_size=30).validate_against(1437, num_replicas=4)
  TrainConfig(batch_size=1437).validate_against(1437)


def test_scaled_lr_regimes():
  assert config_lib.TrainConfig(lr=0.05, batch_size=512, lr_scaling="linear").scaled_lr == pytest.approx(0.1)
  assert config_lib.TrainConfig(lr=0.05, batch_size=1024, lr_scaling="sqrt").scaled_lr == pytest.approx(0.1)
  assert config_lib.TrainConfig(lr=0.05, batch_size=1024).scaled_lr == 0.05


def test_scaled_lr_is_relative_to_the_base_batch_size():
  for b in (16, 64, 100, 1024):
    cfg = dict(lr=0.2, batch_size=b, base_batch_size=64)
    assert TrainConfig(**cfg, lr_scaling="none").scaled_lr == 0.2
    assert TrainConfig(**cfg, lr_scaling="linear").scaled_lr == pytest.approx(0.2 * b / 64)
    assert TrainConfig(**cfg, lr_scaling="sqrt").scaled_lr == pytest.approx(0.2 * math.sqrt(b / 64))
  assert set(config_lib.REGIMES.values()) == set(config_lib.LR_SCALINGS)  # every scaling is some regime's


def test_hparams_hold_what_defines_the_run_and_no_run_settings():
  fields = {f.name for f in dataclasses.fields(TrainConfig)}
  plain = TrainConfig(lr_decay_epochs=(3.0, 5.0)).hparams()
  assert set(plain) == fields - RUN_SETTINGS - {"target_train_loss"} | {"scaled_lr", "budget"}
  assert plain["lr_decay_epochs"] == [3.0, 5.0] and plain["budget"] == "epochs"  # JSON-ready
  settings = dict(data_dir="/elsewhere", steps_per_call=4, checkpoint_every_steps=7, checkpoint_every_s=60.0,
                  epoch_test_eval=False, eval_batch_size=10)
  assert set(settings) == RUN_SETTINGS
  assert TrainConfig(lr_decay_epochs=(3.0, 5.0), **settings).hparams() == plain  # the same run
  assert TrainConfig(max_steps=90).hparams()["budget"] == "steps"
  loss = TrainConfig(target_train_loss=0.1).hparams()
  assert loss["budget"] == "loss" and loss["target_train_loss"] == 0.1  # only where set: older runs keep theirs
  for field, value in (("lr", 0.1), ("seed", 1), ("augment", "crop"), ("nesterov", True), ("batchnorm", True)):
    assert TrainConfig(**{field: value}).hparams() != TrainConfig().hparams(), field


@dataclasses.dataclass(frozen=True, eq=False)  # equal only to itself
class _Section:
  """A stand-in evaluator config that records being validated."""
  calls: list

  def validate(self):
    self.calls.append(self)
    return self


def test_experiment_validate_checks_training_and_every_section():
  calls = []
  first, second = _Section(calls), _Section(calls)
  experiment = ExperimentConfig(evaluators={"first": first, "off": None, "second": second})
  assert experiment.validate() is experiment
  assert calls == [first, second]
  with pytest.raises(UsageError, match="^--lr=0"):
    ExperimentConfig(train=TrainConfig(lr=0), evaluators={"first": first}).validate()
  with pytest.raises(UsageError, match="^--hessian_top_k=0"):
    ExperimentConfig(evaluators={"robustness": RobustnessConfig(), "hessian": HessianConfig(top_k=0)}).validate()
  with pytest.raises(UsageError, match="^--pgd_steps=0"):
    ExperimentConfig(evaluators={"robustness": RobustnessConfig(pgd_steps=0), "hessian": HessianConfig()}).validate()
