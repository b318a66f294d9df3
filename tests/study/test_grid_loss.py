"""study/grid.py under the loss budget: each point's TrainConfig carries the target and the cap as its epochs,
sweep.json's grid records both, and a target or cap that cannot make a loss budget is refused naming its flag."""

import math

import pytest

from tfrobust import config
from tfrobust.errors import UsageError
from tfrobust.study import grid as grid_lib


def _grid(**kw):
  return grid_lib.Grid(regimes=("fixed_lr", "constant_ratio"), batch_sizes=(16, 256), momenta=(0.0, 0.9),
                       seeds=(0,), **kw)


def test_every_point_trains_to_the_target_with_the_cap_as_its_epochs():
  grid = _grid(budget="loss", target_train_loss=0.05, max_epochs=150).validate()
  base = config.TrainConfig(epochs=20, lr=0.02, base_batch_size=64)
  for point in grid.points():
    cfg = grid.train_config(point, base, 4000).validate()
    assert (cfg.target_train_loss, cfg.epochs, cfg.max_steps) == (0.05, 150, 0)
    assert cfg.hparams()["budget"] == "loss" and cfg.hparams()["target_train_loss"] == 0.05
  assert grid.as_dict()["budget"] == "loss"
  assert (grid.as_dict()["target_train_loss"], grid.as_dict()["max_epochs"]) == (0.05, 150)


def test_the_other_budgets_keep_their_hparams_and_sweep_json():
  """Runs and sweeps written before the loss budget keep their identity: no target key where none is set."""
  assert "target_train_loss" not in config.TrainConfig().hparams()
  assert config.TrainConfig().hparams()["budget"] == "epochs"
  assert set(_grid().validate().as_dict()) == {"regimes", "batch_sizes", "momenta", "seeds", "budget"}


@pytest.mark.parametrize("kw, flag", [
    (dict(budget="loss", max_epochs=10), "--target_train_loss"),
    (dict(budget="loss", target_train_loss=0.0, max_epochs=10), "--target_train_loss"),
    (dict(budget="loss", target_train_loss=-0.1, max_epochs=10), "--target_train_loss"),
    (dict(budget="loss", target_train_loss=math.nan, max_epochs=10), "--target_train_loss"),
    (dict(budget="loss", target_train_loss=math.inf, max_epochs=10), "--target_train_loss"),
    (dict(budget="loss", target_train_loss=0.05), "--max_epochs"),
    (dict(budget="loss", target_train_loss=0.05, max_epochs=0), "--max_epochs"),
    (dict(budget="epochs", target_train_loss=0.05), "--target_train_loss"),
    (dict(budget="steps", max_epochs=10), "--max_epochs"),
])
def test_a_loss_budget_without_a_usable_target_or_cap_is_refused(kw, flag):
  with pytest.raises(UsageError, match=f"^{flag}"):
    _grid(**kw).validate()


def test_a_run_refuses_a_negative_target_and_a_target_with_a_steps_budget():
  with pytest.raises(UsageError, match="^--target_train_loss=-1"):
    config.TrainConfig(target_train_loss=-1.0).validate()
  with pytest.raises(UsageError, match="^--target_train_loss"):
    config.TrainConfig(target_train_loss=0.1, max_steps=100).validate()
