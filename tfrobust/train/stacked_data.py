"""The training batches of K stacked networks, each in its own data order: what `data.training_stream` gives each
network alone, gathered into one batch per step.

A step's element is (images [B, H, W, K·C], labels [B, K]): network k's B images in channel block k (the layout of
`models.build_model(..., stack=K)`), its labels in column k. Network k's batch at step s of epoch e is exactly the
batch `data.training_stream` gives a lone run of seed seeds[k] (the same `data.epoch_order`, the same augmentation
key), so stacking changes no network's data. Under a MirroredStrategy each replica takes rows of the batch: a
slice of every network's batch.
"""

import tensorflow as tf

from tfrobust import data as data_lib
from tfrobust.config import AUGMENTATIONS, steps_per_epoch
from tfrobust.errors import UsageError


def stacked_images(images):
  """[K, B, H, W, C] -> [B, H, W, K·C]: network k's images in channel block k."""
  shape = tf.shape(images)
  k, b, h, w, c = shape[0], shape[1], shape[2], shape[3], shape[4]
  return tf.reshape(tf.transpose(images, [1, 2, 3, 0, 4]), [b, h, w, k * c])


def stacked_stream(x, y, batch_size, *, seeds, epochs, start_step=0, augment="none"):
  """Every step's batch for the networks of `seeds` (one per network), from step `start_step` on, as one tf.data
  pipeline; a resumed run replays the same batches. x: [N, H, W, C] in [0, 1]; y: [N] int labels."""
  if augment not in AUGMENTATIONS:
    raise UsageError(f"--augment={augment}: choose one of {', '.join(AUGMENTATIONS)}")
  n = len(x)
  spe = steps_per_epoch(n, batch_size)
  x_all, y_all = tf.constant(x), tf.constant(y)
  seeds = [int(s) for s in seeds]

  def epoch_batches(epoch):
    orders = tf.stack([data_lib.epoch_order(n, s, epoch)[:spe * batch_size] for s in seeds])  # [K, spe·B]
    orders = tf.transpose(tf.reshape(orders, [len(seeds), spe, batch_size]), [1, 0, 2])  # [spe, K, B]
    return tf.data.Dataset.from_tensor_slices((tf.fill([spe], epoch), tf.range(spe, dtype=tf.int64), orders))

  def batch(epoch, step, idx):
    images = tf.gather(x_all, idx)  # [K, B, H, W, C]
    if augment != "none":
      images = tf.stack([data_lib.augment_batch(images[k], data_lib.augment_seed(s, epoch, step),
                                                flip=augment == "crop_flip") for k, s in enumerate(seeds)])
    return stacked_images(images), tf.transpose(tf.gather(y_all, idx))

  first_epoch, skip = divmod(start_step, spe)
  ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_batches).skip(skip).map(batch)
  return ds.with_options(data_lib.stream_options()).prefetch(data_lib.PREFETCH_BATCHES)
