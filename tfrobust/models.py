"""Keras classifiers that map images in [0, 1] to logits (no softmax: losses and attacks want logits).

`c1` and `c2` are the networks of Yao et al. 2018 (HessianFlow), offered so that their study can be re-run.
All convolutions use 'same' padding so that every model also runs on 8x8 digits.

Every architecture also comes as a stack of K independent networks in one model (`stack=K`), so that K small
networks train as one computation: network k owns block k of the last axis of every tensor — images
[B, H, W, K·C], conv features [B, H, W, K·F] (Conv2D with groups=K), dense features [B, K·U] (StackedDense, one
matmul over the network axis), logits [B, K·classes]. BatchNorm, ReLU and pooling act per channel, hence per
network. stack=1 is the plain model, layer for layer. `unstack_weights` takes network k out as the weights of the
plain model; `stack_weights` puts K plain models' weights into a stack.
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


def _dense(units, stack, **kwargs):
  return layers.Dense(units, **kwargs) if stack == 1 else StackedDense(units, stack, **kwargs)


def _conv(filters, kernel, stack, stride=1, use_bias=True):
  """K convolutions of `filters` each as one grouped convolution (stack=1: the plain Conv2D)."""
  conv = layers.Conv2D if stack == 1 else StackedConv2D
  return conv(filters * stack, kernel, strides=stride, padding="same", use_bias=use_bias, groups=stack)


def _flatten(x, stack):
  return layers.Flatten()(x) if stack == 1 else StackedFlatten(stack)(x)


def _dense_block(x, units, batchnorm, stack):
  return _norm_act(_dense(units, stack, use_bias=not batchnorm)(x), batchnorm)


def _conv_block(x, filters, kernel, batchnorm, stack, stride=1):
  return _norm_act(_conv(filters, kernel, stack, stride, use_bias=not batchnorm)(x), batchnorm)


def _mlp(x, batchnorm, stack):
  x = _flatten(x, stack)
  for units in (256, 256):
    x = _dense_block(x, units, batchnorm, stack)
  return x


def _lenet(x, batchnorm, stack):
  for filters in (6, 16):
    x = _conv_block(x, filters, 5, batchnorm, stack)
    x = layers.MaxPooling2D(2, padding="same")(x)
  x = _flatten(x, stack)
  for units in (120, 84):
    x = _dense_block(x, units, batchnorm, stack)
  return x


def _c1(x, batchnorm, stack):
  """Yao et al.'s C1: conv5x5(64)-BN-pool, conv5x5(64)-BN-pool, FC 384, 192."""
  for _ in range(2):
    x = _conv_block(x, 64, 5, batchnorm, stack)
    x = layers.MaxPooling2D(2, padding="same")(x)
  x = _flatten(x, stack)
  for units in (384, 192):
    x = _dense_block(x, units, batchnorm, stack)
  return x


def _c2(x, batchnorm, stack):
  """Yao et al.'s C2: 3x3 convs 64, 64, pool, 128, 128, pool, FC 256, 256."""
  for filters in (64, 64):
    x = _conv_block(x, filters, 3, batchnorm, stack)
  x = layers.MaxPooling2D(2, padding="same")(x)
  for filters in (128, 128):
    x = _conv_block(x, filters, 3, batchnorm, stack)
  x = layers.MaxPooling2D(2, padding="same")(x)
  x = _flatten(x, stack)
  for units in (256, 256):
    x = _dense_block(x, units, batchnorm, stack)
  return x


def _native_grouped_conv():
  """Whether TensorFlow's own Conv2D kernels take groups here: oneDNN's on CPU and cuDNN's do; Eigen's CPU kernels
  refuse the filter gradient."""
  try:
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=import-outside-toplevel (private)
    onednn = _pywrap_util_port.IsMklEnabled()
  except (ImportError, AttributeError):
    onednn = False
  return onednn or bool(tf.config.list_logical_devices("GPU"))


@keras.saving.register_keras_serializable(package="tfrobust")
class StackedConv2D(layers.Conv2D):
  """Conv2D with groups=K, the K networks' convolutions in one op. Keras runs a grouped convolution on CPU as an
  XLA compile of the op, measured ~150x slower than oneDNN's grouped kernel (LeNet's two convs, K=8, B=64: 3.1 s
  against 20 ms a step, 2 cores); so TensorFlow's kernel is called directly where it takes groups, and without
  oneDNN each group is its own convolution."""

  def convolution_op(self, inputs, kernel):
    strides, padding = list(self.strides), self.padding.upper()
    if inputs.dtype != tf.float64 and _native_grouped_conv():  # neither oneDNN nor Eigen groups float64
      return tf.nn.convolution(inputs, kernel, strides, padding)
    xs = tf.split(inputs, self.groups, axis=-1)
    ks = tf.split(kernel, self.groups, axis=-1)
    return tf.concat([tf.nn.convolution(x, k, strides, padding) for x, k in zip(xs, ks)], axis=-1)


@keras.saving.register_keras_serializable(package="tfrobust")
class StackedDense(layers.Layer):
  """K independent dense layers as one batched matmul over the network axis: [B, K·I] -> [B, K·units], network k's
  inputs and outputs in block k. kernel [K, I, units] (network k's is kernel[k]), bias [K·units]."""

  def __init__(self, units, stack, use_bias=True, **kwargs):
    super().__init__(**kwargs)
    self.units, self.stack, self.use_bias = units, stack, use_bias

  def build(self, input_shape):
    fan_in = input_shape[-1] // self.stack
    limit = float(np.sqrt(6.0 / (fan_in + self.units)))  # Glorot uniform per network, as layers.Dense draws
    self.kernel = self.add_weight(shape=(self.stack, fan_in, self.units), name="kernel",
                                  initializer=keras.initializers.RandomUniform(-limit, limit))
    self.bias = (self.add_weight(shape=(self.stack * self.units,), name="bias", initializer="zeros")
                 if self.use_bias else None)

  def call(self, x):
    # A batched matmul over the network axis between explicit transposes: measured 15-35% faster than the same
    # einsum ("bki,kiu->bku") with its gradient on CPU (K = 8, B = 32, 256 units).
    x = keras.ops.transpose(keras.ops.reshape(x, (-1, self.stack, self.kernel.shape[1])), (1, 0, 2))
    y = keras.ops.transpose(keras.ops.matmul(x, self.kernel), (1, 0, 2))
    y = keras.ops.reshape(y, (-1, self.stack * self.units))
    return y + self.bias if self.use_bias else y

  def get_config(self):
    return dict(super().get_config(), units=self.units, stack=self.stack, use_bias=self.use_bias)


@keras.saving.register_keras_serializable(package="tfrobust")
class StackedFlatten(layers.Layer):
  """Flatten per network: [B, H, W, K·C] -> [B, K·H·W·C], block k holding what Flatten gives network k."""

  def __init__(self, stack, **kwargs):
    super().__init__(**kwargs)
    self.stack = stack

  def call(self, x):
    h, w, c = x.shape[1], x.shape[2], x.shape[3] // self.stack
    x = keras.ops.transpose(keras.ops.reshape(x, (-1, h, w, self.stack, c)), (0, 3, 1, 2, 4))
    return keras.ops.reshape(x, (-1, self.stack * h * w * c))

  def get_config(self):
    return dict(super().get_config(), stack=self.stack)


@keras.saving.register_keras_serializable(package="tfrobust")
class ShortcutA(layers.Layer):
  """He et al.'s option-A shortcut: identity, subsampled by `stride` and zero-padded to `filters` channels.

  Parameter-free, so ResNet-20 has the 0.27M weights of He et al.'s Table 6 (a 1x1 projection, option B, would
  add 2,560 and change the network the paper trained).
  """

  def __init__(self, filters, stride, stack=1, **kwargs):
    super().__init__(**kwargs)
    self.filters, self.stride, self.stack = filters, stride, stack

  def call(self, x):
    if self.stride > 1:
      x = x[:, ::self.stride, ::self.stride, :]  # ceil(n / stride) rows: what a 'same' strided conv gives
    h, w, c = x.shape[1], x.shape[2], x.shape[3] // self.stack
    extra = self.filters - c
    if not extra:
      return x
    x = keras.ops.reshape(x, (-1, h, w, self.stack, c))  # each network's channels padded within its own block
    x = keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])
    return keras.ops.reshape(x, (-1, h, w, self.stack * self.filters))

  def get_config(self):
    stack = {"stack": self.stack} if self.stack > 1 else {}  # a plain model's config as it always was
    return dict(super().get_config(), filters=self.filters, stride=self.stride, **stack)


def _resnet20(x, batchnorm, stack):
  """He et al.'s CIFAR ResNet-20 (Sec. 4.2): 3 stages of 3 basic blocks, 16/32/64 filters, option-A shortcuts
  (identity; strided subsampling and zero channels where the shape changes), as the paper trains it."""
  x = _conv_block(x, 16, 3, batchnorm, stack)
  for stage, filters in enumerate((16, 32, 64)):
    for block in range(3):
      stride = 2 if stage > 0 and block == 0 else 1
      shortcut = x
      y = _conv_block(x, filters, 3, batchnorm, stack, stride)
      y = _conv(filters, 3, stack, use_bias=not batchnorm)(y)
      if batchnorm:
        y = layers.BatchNormalization(synchronized=True)(y)
      if stride != 1 or shortcut.shape[-1] != filters * stack:
        shortcut = ShortcutA(filters, stride, stack, name=f"shortcut_{stage}_{block}")(shortcut)
      x = layers.ReLU()(layers.Add()([y, shortcut]))
  return layers.GlobalAveragePooling2D()(x)


def _vgg11(x, batchnorm, stack):
  """VGG-11 (configuration A) for small images; pooling stops once the feature map is 1x1."""
  for filters in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
    if filters == "M":
      if x.shape[1] > 1:
        x = layers.MaxPooling2D(2, padding="same")(x)
    else:
      x = _conv_block(x, filters, 3, batchnorm, stack)
  x = _flatten(x, stack)
  return _dense_block(x, 512, batchnorm, stack)


_BODIES = {"mlp": _mlp, "lenet": _lenet, "c1": _c1, "c2": _c2, "resnet20": _resnet20, "vgg11": _vgg11}


def build_model(name, input_shape, num_classes, *, batchnorm=False, seed=0, stack=1):
  """A fresh `name` model with weights drawn from `seed`; call it under the strategy's scope.

  stack=K > 1: K independent networks in one model (the module docstring), images [B, H, W, K·C] in (C the
  channels of `input_shape`), logits [B, K·num_classes] out; its weights are best set by `stack_weights`.
  """
  if name not in _BODIES:
    raise UsageError(f"--model={name}: unknown model; choose one of {', '.join(MODELS)}")
  keras.utils.set_random_seed(seed)
  *hw, channels = input_shape
  inputs = keras.Input(shape=(*hw, channels * stack), name="images")
  features = _BODIES[name](inputs, batchnorm, stack)
  logits = _dense(num_classes, stack, name="logits")(features)
  return keras.Model(inputs, logits, name=name if stack == 1 else f"{name}_stack{stack}")


def stack_count(model):
  """K, the networks in a model built with stack=K (1 for a plain model)."""
  return model.get_layer("logits").stack if isinstance(model.get_layer("logits"), StackedDense) else 1


def network_axes(stacked, variables=None):
  """Per variable of `stacked` (default: all its weights, in get_weights order): 0 where network k's part is index
  k of the first axis (StackedDense kernels), -1 where it is block k of the last axis (every other weight)."""
  first = {id(layer.kernel) for layer in stacked.layers if isinstance(layer, StackedDense)}
  return [0 if id(w) in first else -1 for w in (stacked.weights if variables is None else variables)]


def unstack_weights(stacked, k):
  """Network k's weights in a stack, as the list that get_weights() of the plain model (stack=1) holds."""
  stack = stack_count(stacked)
  out = []
  for axis, w in zip(network_axes(stacked), stacked.get_weights()):
    n = w.shape[-1] // stack
    out.append(w[k] if axis == 0 else w[..., k * n:(k + 1) * n])
  return out


def stack_weights(stacked, networks):
  """Sets the weights of a stack from K plain models' weights (each a get_weights() list), network k from
  networks[k]."""
  stacked.set_weights([np.stack(ws) if axis == 0 else np.concatenate(ws, axis=-1)
                       for axis, ws in zip(network_axes(stacked), zip(*networks))])


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
