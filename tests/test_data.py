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


def _cifar_like(n=40, seed=0):
  """Colour 8x8 images with no zero pixel, so the zero fill of a crop and the exact transform can be told."""
  rng = np.random.default_rng(seed)
  return rng.uniform(0.05, 1.0, (n, 8, 8, 3)).astype(np.float32), np.arange(n)


def _transform(original, augmented, pad=data.CROP_PAD):
  """(row shift, column shift, flipped) that turns `original` into `augmented`, or None if no crop/flip does."""
  padded = np.pad(original, [(pad, pad), (pad, pad), (0, 0)])
  h, w = original.shape[:2]
  for dy in range(2 * pad + 1):
    for dx in range(2 * pad + 1):
      window = padded[dy:dy + h, dx:dx + w]
      for flipped in (False, True):
        if np.array_equal(window[:, ::-1] if flipped else window, augmented):
          return dy - pad, dx - pad, flipped
  return None


def _stream(x, y, **kw):
  return [(b[0].numpy(), b[1].numpy()) for b in data.training_stream(x, y, 8, seed=3, epochs=2, **kw)]


def test_augment_none_is_the_identity():
  x, y = _cifar_like()
  plain, none = _stream(x, y), _stream(x, y, augment="none")
  for (xa, ya), (xb, yb) in zip(plain, none):
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(xb, x[yb])  # label k is example k: the images are the examples untouched


@pytest.mark.parametrize("augment", ["crop_flip", "crop"])
def test_augment_crops_and_flips_within_range(augment):
  x, y = _cifar_like()
  batches = _stream(x, y, augment=augment)
  transforms = []
  for images, labels in batches:
    assert images.shape == (8, 8, 8, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    transforms += [_transform(x[k], img) for k, img in zip(labels, images)]
  assert None not in transforms  # every image is a crop (and maybe a mirror) of its own example
  shifts = [(dy, dx) for dy, dx, _ in transforms]
  flips = [f for *_, f in transforms]
  assert sum(s != (0, 0) for s in shifts) > len(shifts) // 2  # 80 of 81 offsets move the image
  assert len(set(shifts)) > 20  # offsets spread over the 9 x 9 possible
  if augment == "crop_flip":
    assert 0.25 < np.mean(flips) < 0.75
  else:
    assert not any(flips)


def test_augment_is_a_pure_function_of_seed_epoch_and_step():
  import tensorflow as tf
  x, _ = _cifar_like(8)
  images = tf.constant(x)

  def aug(seed, epoch, step):
    return data.augment_batch(images, data.augment_seed(seed, epoch, step), flip=True).numpy()
  np.testing.assert_array_equal(aug(1, 2, 3), aug(1, 2, 3))
  for other in (aug(1, 3, 3), aug(1, 2, 4), aug(2, 2, 3)):
    assert not np.array_equal(other, aug(1, 2, 3))
  x40, y40 = _cifar_like()
  first, again = _stream(x40, y40, augment="crop_flip"), _stream(x40, y40, augment="crop_flip")
  for (xa, ya), (xb, yb) in zip(first, again):
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)


def test_augmented_stream_resumes_exactly():
  x, y = _cifar_like(43)  # 5 batches an epoch, 3 examples dropped
  full = _stream(x, y, augment="crop_flip")
  assert len(full) == 10
  for start in (3, 5, 7):
    resumed = _stream(x, y, augment="crop_flip", start_step=start)
    assert len(resumed) == len(full) - start
    for (xa, ya), (xb, yb) in zip(full[start:], resumed):
      np.testing.assert_array_equal(xa, xb)
      np.testing.assert_array_equal(ya, yb)


def test_bad_augment_is_a_usage_error():
  from conftest import run_module
  from tfrobust.config import TrainConfig
  with pytest.raises(UsageError, match="^--augment=foo: choose one of none, crop_flip, crop$"):
    TrainConfig(augment="foo").validate()
  x, y = _cifar_like(8)
  with pytest.raises(UsageError, match="^--augment=flip:"):
    data.training_stream(x, y, 4, seed=0, epochs=1, augment="flip")
  proc = run_module("tfrobust.main", "--augment=foo", "--epochs=1", timeout=120)
  assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
      "error: --augment=foo: choose one of none, crop_flip, crop"], proc.stderr[-2000:]


def test_training_streams_run_without_tf_data_autotuning():
  """Closing an autotuned stream waits for the autotuner's thread (seconds at the end of a stack's training, which no
  stage of a trial named): both training streams turn it off; their batches are fixed by the seed either way."""
  from tfrobust.train import stacked_data
  ds = data.load_digits()
  for stream in (data.training_stream(ds.x_train, ds.y_train, 16, seed=0, epochs=1),
                 stacked_data.stacked_stream(ds.x_train, ds.y_train, 16, seeds=[0, 1], epochs=1)):
    assert stream.options().autotune.enabled is False and stream.options().deterministic is True
