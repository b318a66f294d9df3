"""tfrobust.experiment.run's directory rules: a run directory written before later hyperparameters existed still
resumes, one holding another run or anything else is refused (the run itself: tests/cli/test_main.py)."""

import pytest

from tfrobust import config, io
from tfrobust.errors import UsageError
from tfrobust.experiment import run as run_lib
from tfrobust.records import names, upgrade


def test_a_directory_written_before_later_hparams_existed_still_resumes(tmp_path):
  hparams = config.TrainConfig().hparams()
  old = {k: v for k, v in hparams.items() if k not in upgrade.LATER_HPARAMS}
  run_dir = tmp_path / "run"
  run_dir.mkdir()
  io.write_json(str(run_dir / names.HPARAMS_FILE), old)
  assert run_lib.check_output_dir(str(run_dir), hparams) is True
  with pytest.raises(UsageError, match="augment"):
    run_lib.check_output_dir(str(run_dir), dict(hparams, augment="crop_flip"))


def test_a_directory_holding_something_else_is_refused(tmp_path):
  (tmp_path / "notes.txt").write_text("mine")
  with pytest.raises(UsageError, match="not empty and holds no tfrobust run"):
    run_lib.check_output_dir(str(tmp_path), config.TrainConfig().hparams())
  with pytest.raises(UsageError, match="is not a directory"):
    run_lib.check_output_dir(str(tmp_path / "notes.txt" / "run"), config.TrainConfig().hparams())
  assert run_lib.check_output_dir(str(tmp_path / "fresh"), config.TrainConfig().hparams()) is False


def test_a_sweeps_trainers_share_one_model_per_architecture():
  """Every batch size of a study trains the same model object (reset to each run's own initial weights, drawn once
  per seed), so the evaluators' compiled functions, cached per model, are traced once per architecture."""
  import dataclasses
  import numpy as np
  import tensorflow as tf
  from tfrobust import data
  ds = data.load_digits()
  strategy = tf.distribute.get_strategy()
  cache = run_lib.TrainerCache()
  base = config.TrainConfig(dataset="digits", model="mlp")
  small = run_lib._trainer_for(dataclasses.replace(base, batch_size=16, seed=1), ds, strategy, cache)
  small_weights = [w.copy() for w in small.model.get_weights()]
  large = run_lib._trainer_for(dataclasses.replace(base, batch_size=32, seed=2), ds, strategy, cache)
  assert large is not small and large.model is small.model
  from tfrobust import models
  want = models.build_model("mlp", ds.input_shape, 10, seed=2).get_weights()
  for got, w in zip(large.model.get_weights(), want):  # seed 2's own initial weights
    np.testing.assert_array_equal(got, w)
  again = run_lib._trainer_for(dataclasses.replace(base, batch_size=16, seed=1), ds, strategy, cache)
  for got, w in zip(again.model.get_weights(), small_weights):  # seed 1's again (drawn once, kept)
    np.testing.assert_array_equal(got, w)
  assert len(cache._weights) == 2  # pylint: disable=protected-access
  lenet = run_lib._trainer_for(dataclasses.replace(base, model="lenet", batch_size=16), ds, strategy, cache)
  assert lenet.model is not small.model
