"""Keras classifiers that map images in [0, 1] to logits (no softmax: losses and attacks want logits).

`c1` and `c2` are the networks of Yao et al. 2018 (HessianFlow), offered so that their study can be re-run.
All convolutions use 'same' padding so that every model also runs on 8x8 digits.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from tfrobust.config import MODELS  # noqa: F401 (the names, kept free of Keras for flag parsing)
from tfrobust.errors import UsageError


def _norm_act(x, batchnorm):
  if batchnorm:
    # synchronized: batch statistics over the global batch, so N replicas train exactly like one.
    x = layers.BatchNormalization(synchronized=True)(x)
  return layers.ReLU()(x)


def _dense_block(x, units, batchnorm):
  return _norm_act(layers.Dense(units, use_bias=not batchnorm)(x), batchnorm)


def _conv_block(x, filters, kernel, batchnorm, stride=1):
  x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=not batchnorm)(x)
  return _norm_act(x, batchnorm)


def _mlp(x, batchnorm):
  x = layers.Flatten()(x)
  for units in (256, 256):
    x = _dense_block(x, units, batchnorm)
  return x


def _lenet(x, batchnorm):
  for filters in (6, 16):
    x = _conv_block(x, filters, 5, batchnorm)
    x = layers.MaxPooling2D(2, padding="same")(x)
  x = layers.Flatten()(x)
  for units in (120, 84):
    x = _dense_block(x, units, batchnorm)
  return x


def _c1(x, batchnorm):
  """Yao et al.'s C1: conv5x5(64)-BN-pool, conv5x5(64)-BN-pool, FC 384, 192."""
  for _ in range(2):
    x = _conv_block(x, 64, 5, batchnorm)
    x = layers.MaxPooling2D(2, padding="same")(x)
  x = layers.Flatten()(x)
  for units in (384, 192):
    x = _dense_block(x, units, batchnorm)
  return x


def _c2(x, batchnorm):
  """Yao et al.'s C2: 3x3 convs 64, 64, pool, 128, 128, pool, FC 256, 256."""
  for filters in (64, 64):
    x = _conv_block(x, filters, 3, batchnorm)
  x = layers.MaxPooling2D(2, padding="same")(x)
  for filters in (128, 128):
    x = _conv_block(x, filters, 3, batchnorm)
  x = layers.MaxPooling2D(2, padding="same")(x)
  x = layers.Flatten()(x)
  for units in (256, 256):
    x = _dense_block(x, units, batchnorm)
  return x


@keras.saving.register_keras_serializable(package="tfrobust")
class ShortcutA(layers.Layer):
  """He et al.'s option-A shortcut: identity, subsampled by `stride` and zero-padded to `filters` channels.

  Parameter-free, so ResNet-20 has the 0.27M weights of He et al.'s Table 6 (a 1x1 projection, option B, would
  add 2,560 and change the network the paper trained).
  """

  def __init__(self, filters, stride, **kwargs):
    super().__init__(**kwargs)
    self.filters, self.stride = filters, stride

  def call(self, x):
    if self.stride > 1:
      x = x[:, ::self.stride, ::self.stride, :]  # ceil(n / stride) rows: what a 'same' strided conv gives
    extra = self.filters - x.shape[-1]
    return keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]]) if extra else x

  def get_config(self):
    return dict(super().get_config(), filters=self.filters, stride=self.stride)


def _resnet20(x, batchnorm):
  """He et al.'s CIFAR ResNet-20 (Sec. 4.2): 3 stages of 3 basic blocks, 16/32/64 filters, option-A shortcuts
  (identity; strided subsampling and zero channels where the shape changes), as the paper trains it."""
  x = _conv_block(x, 16, 3, batchnorm)
  for stage, filters in enumerate((16, 32, 64)):
    for block in range(3):
      stride = 2 if stage > 0 and block == 0 else 1
      shortcut = x
      y = _conv_block(x, filters, 3, batchnorm, stride)
      y = layers.Conv2D(filters, 3, padding="same", use_bias=not batchnorm)(y)
      if batchnorm:
        y = layers.BatchNormalization(synchronized=True)(y)
      if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = ShortcutA(filters, stride, name=f"shortcut_{stage}_{block}")(shortcut)
      x = layers.ReLU()(layers.Add()([y, shortcut]))
  return layers.GlobalAveragePooling2D()(x)


def _vgg11(x, batchnorm):
  """VGG-11 (configuration A) for small images; pooling stops once the feature map is 1x1."""
  for filters in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
    if filters == "M":
      if x.shape[1] > 1:
        x = layers.MaxPooling2D(2, padding="same")(x)
    else:
      x = _conv_block(x, filters, 3, batchnorm)
  x = layers.Flatten()(x)
  return _dense_block(x, 512, batchnorm)


_BODIES = {"mlp": _mlp, "lenet": _lenet, "c1": _c1, "c2": _c2, "resnet20": _resnet20, "vgg11": _vgg11}


def build_model(name, input_shape, num_classes, *, batchnorm=False, seed=0):
  """A fresh `name` model with weights drawn from `seed`; call it under the strategy's scope."""
  if name not in _BODIES:
    raise UsageError(f"--model={name}: unknown model; choose one of {', '.join(MODELS)}")
  keras.utils.set_random_seed(seed)
  inputs = keras.Input(shape=input_shape, name="images")
  features = _BODIES[name](inputs, batchnorm)
  logits = layers.Dense(num_classes, name="logits")(features)
  return keras.Model(inputs, logits, name=name)


def check_input_shape(model, shape):
  """Raises UsageError when images of `shape` (H, W, C) cannot be fed to `model` (a Keras model or an
  export.LoadedModel)."""
  expected = tuple(model.input_shape)[1:]
  if len(expected) != len(shape) or any(e is not None and e != s for e, s in zip(expected, shape)):
    raise UsageError(f"images of shape {tuple(shape)} do not fit the model's input shape {expected}")


def predict_classes(model, x, batch_size):
  """(the class `model` gives each image, its number of classes or None for no images): a plain eager call per
  batch in inference mode — no compiled step, replica or reordering, so that it is a second path to what the
  compiled evaluations compute. model: images in [0, 1] → logits."""
  logits = [np.asarray(model(tf.constant(x[i:i + batch_size], tf.float32), training=False))
            for i in range(0, len(x), batch_size)]
  if not logits:
    return np.zeros(0, np.int64), None
  return np.concatenate([np.argmax(z, axis=1) for z in logits]), logits[0].shape[-1]
