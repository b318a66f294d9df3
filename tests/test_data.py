"""Datasets: the embedded sets, the tfds path (with tfds.testing.mock_data) and the training stream."""

import numpy as np
import pytest

from tfrobust import data
from tfrobust.errors import UsageError


def test_digits_split_is_stratified_fixed_and_scaled():
  a, b = data.load_digits(), data.load_digits()
  assert a.x_train.shape == (1437, 8, 8, 1) and a.x_test.shape == (360, 8, 8, 1)
  np.testing.assert_array_equal(a.y_test, b.y_test)
  assert 0.0 <= a.x_train.min() and a.x_train.max() == 1.0
  counts = np.bincount(a.y_test, minlength=10)
  assert counts.min() >= 35 and counts.max() <= 37  # stratified: 36 per class, ±1


def test_mnist5k_is_real_mnist_4000_1000():
  ds = data.load_mnist5k()
  assert ds.x_train.shape == (4000, 28, 28, 1) and ds.x_test.shape == (1000, 28, 28, 1)
  assert np.bincount(ds.y_test).tolist() == [100] * 10
  assert ds.x_train.max() == 1.0 and ds.x_train.dtype == np.float32


def test_tfds_path_with_mock_data():
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=50):
    ds = data.load_dataset("mnist")
  assert ds.x_train.shape[1:] == (28, 28, 1) and len(ds.x_train) == 50
  assert ds.num_classes == 10 and ds.x_train.max() <= 1.0 and ds.x_train.dtype == np.float32


def test_unknown_and_missing_datasets_are_usage_errors(tmp_path):
  with pytest.raises(UsageError, match="--dataset=nosuch"):
    data.load_dataset("nosuch")
  with pytest.raises(UsageError, match="not found"):
    data.load_dataset("mnist", data_dir=str(tmp_path))


def test_training_stream_epochs_resume_and_drop_remainder():
  x = np.arange(10, dtype=np.float32).reshape(10, 1)
  y = np.arange(10)
  batches = [b[1].numpy().tolist() for b in data.training_stream(x, y, 3, seed=7, epochs=2)]
  assert len(batches) == 6 and all(len(b) == 3 for b in batches)  # 3 full batches an epoch
  assert len(set(sum(batches[:3], []))) == 9  # no example twice within an epoch
  assert batches[:3] != batches[3:]  # a fresh order each epoch
  resumed = [b[1].numpy().tolist() for b in data.training_stream(x, y, 3, seed=7, epochs=2, start_step=4)]
  assert resumed == batches[4:]
  other = [b[1].numpy().tolist() for b in data.training_stream(x, y, 3, seed=8, epochs=2)]
  assert other != batches
