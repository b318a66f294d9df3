"""The study's grid (study/grid.py): every point once with its regime's learning-rate scaling, bad grids refused
naming the flag, and the steps budget's configs — against the regimes' formulas (docs/study.md), hand-counted
updates and the schedule of tfrobust.train.sgd (no TensorFlow for the grid itself). Refusals from the command
line: tests/cli/test_sweep.py."""

import pytest

from tfrobust import config
from tfrobust.errors import UsageError
from tfrobust.study import grid as grid_lib


def test_every_point_once_with_its_regimes_learning_rate():
  grid = grid_lib.Grid(("fixed_lr", "constant_ratio", "sqrt"), (32, 1024), (0.0, 0.9), (0, 1))
  points = grid.validate().points()
  assert len(points) == 3 * 2 * 2 * 2 == len({p.key for p in points})
  assert points[0].key == "fixed_lr-b32-m0-s0" and points[-1].key == "sqrt-b1024-m0.9-s1"
  base = config.TrainConfig(lr=0.05, base_batch_size=256)
  lr = {(p.regime, p.batch_size): p.train_config(base).scaled_lr for p in points}
  assert lr[("fixed_lr", 32)] == lr[("fixed_lr", 1024)] == 0.05  # η at every B
  assert lr[("constant_ratio", 32)] == pytest.approx(0.05 / 8) and lr[("constant_ratio", 1024)] == pytest.approx(0.2)
  assert lr[("sqrt", 1024)] == pytest.approx(0.1)  # η·√(B/B₀)
  cfg = points[-1].train_config(base)
  assert (cfg.batch_size, cfg.momentum, cfg.seed, cfg.lr) == (1024, 0.9, 1, 0.05)


@pytest.mark.parametrize("change, flag", [
    ({"batch_sizes": ()}, "--batch_sizes"),
    ({"regimes": ("fixed_lr", "adaptive")}, "--regimes"),
    ({"momenta": (1.5,)}, "--momenta"),
    ({"seeds": (0, -1)}, "--seeds"),
    ({"budget": "foo"}, "--budget"),
])
def test_bad_grid_names_the_flag(change, flag):
  fields = {**dict(regimes=("fixed_lr",), batch_sizes=(32,), momenta=(0.9,), seeds=(0,)), **change}
  with pytest.raises(UsageError, match=f"^{flag}"):
    grid_lib.Grid(**fields).validate()


def test_steps_budget_configs_align_the_schedule_in_updates():
  """In-process: the point configs of the steps budget (no TensorFlow needed)."""
  from tfrobust.train import sgd
  base = config.TrainConfig(lr=0.1, epochs=10, base_batch_size=64, lr_schedule="step", lr_decay_epochs=(5.0,),
                            warmup_epochs=2.0)
  grid = grid_lib.Grid(("fixed_lr",), (32, 64, 128), (0.9,), (0,), budget="steps")
  grid.validate(num_train_examples=1437, base=base)
  total = grid_lib.steps_budget(10, 1437, 64)
  assert total == 225  # round(224.53)
  for b in (32, 64, 128):
    cfg = grid.train_config(grid_lib.GridPoint("fixed_lr", b, 0.9, 0), base, 1437)
    spe = 1437 // b
    cfg.validate().validate_against(1437)
    assert cfg.max_steps == 225 and cfg.epochs == -(-225 // spe)
    lrs = [sgd.schedule_from_config(cfg, spe)(s) for s in range(225)]
    assert lrs.index(0.1) == 44 and lrs.index(pytest.approx(0.01)) == 113  # warm-up (45 steps), decay: same
  epochs_grid = grid_lib.Grid(("fixed_lr",), (32,), (0.9,), (0,))
  assert epochs_grid.train_config(grid_lib.GridPoint("fixed_lr", 32, 0.9, 0), base, 1437).max_steps == 0
