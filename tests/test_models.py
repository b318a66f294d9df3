"""tfrobust.models: ResNet-20 is He et al.'s CIFAR network (option-A shortcuts, 0.27M weights), every model
maps images to logits of the right shape."""

import numpy as np
import pytest

from tfrobust import models


def _resnet20_weights(batchnorm, channels=3, classes=10):
  """He et al.'s ResNet-20 counted by hand: a 3x3 stem conv, 3 stages x 3 blocks x 2 3x3 convs (16, 32, 64
  filters; the first conv of stages 2 and 3 takes the previous width), the dense layer, and per conv either a bias
  or BatchNorm's γ and β. Option-A shortcuts add nothing."""
  convs = [(channels, 16)]
  width = 16
  for filters in (16, 32, 64):
    for _ in range(3):
      convs += [(width, filters), (filters, filters)]
      width = filters
  kernels = sum(9 * c_in * c_out for c_in, c_out in convs)
  per_channel = sum(c_out for _, c_out in convs) * (2 if batchnorm else 1)
  return kernels + per_channel + 64 * classes + classes


def _trainable(model):
  return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("batchnorm", [True, False])
def test_resnet20_has_he_et_al_parameter_count(batchnorm):
  model = models.build_model("resnet20", (32, 32, 3), 10, batchnorm=batchnorm)
  assert _trainable(model) == _resnet20_weights(batchnorm)
  assert _resnet20_weights(True) == 269_722  # Table 6 of He et al. 2016: 0.27M
  assert round(_trainable(model) / 1e6, 2) == 0.27
  assert model.output_shape == (None, 10)
  shortcuts = [layer for layer in model.layers if isinstance(layer, models.ShortcutA)]
  assert len(shortcuts) == 2 and all(not layer.weights for layer in shortcuts)
  assert not any(layer.name.startswith("conv2d") and layer.kernel.shape[:2] == (1, 1) for layer in model.layers)


def test_shortcut_a_subsamples_and_pads_channels_with_zeros():
  x = np.random.default_rng(0).uniform(size=(2, 7, 7, 16)).astype(np.float32)
  out = np.asarray(models.ShortcutA(32, 2)(x))
  assert out.shape == (2, 4, 4, 32)  # ceil(7 / 2), as a 'same' strided conv
  np.testing.assert_array_equal(out[..., 8:24], x[:, ::2, ::2, :])
  assert not out[..., :8].any() and not out[..., 24:].any()


@pytest.mark.parametrize("name", models.MODELS)
@pytest.mark.parametrize("shape", [(8, 8, 1), (32, 32, 3)])
def test_every_model_gives_logits(name, shape):
  model = models.build_model(name, shape, 10, batchnorm=name == "resnet20")
  logits = model(np.zeros((2, *shape), np.float32), training=False)
  assert tuple(logits.shape) == (2, 10)
