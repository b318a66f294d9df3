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


STACK = 3  # networks in the stacks below: more than one block on each side of a middle one


def _stacked_and_plain(name, shape, batchnorm):
  plain = [models.build_model(name, shape, 10, batchnorm=batchnorm, seed=s) for s in range(STACK)]
  stacked = models.build_model(name, shape, 10, batchnorm=batchnorm, seed=99, stack=STACK)
  models.stack_weights(stacked, [m.get_weights() for m in plain])
  return stacked, plain


@pytest.mark.parametrize("name", models.MODELS)
def test_a_stack_computes_each_network_on_its_own_images(name):
  """K networks stacked give, block by block, the logits each plain network gives its own images (in training
  mode too: BatchNorm's batch statistics per network), and network k comes out with exactly its weights."""
  shape, batchnorm = (8, 8, 2), name in ("resnet20", "c1")
  stacked, plain = _stacked_and_plain(name, shape, batchnorm)
  assert models.stack_count(stacked) == STACK and models.stack_count(plain[0]) == 1
  for k in range(STACK):
    assert all(np.array_equal(a, b) for a, b in zip(models.unstack_weights(stacked, k), plain[k].get_weights()))
  rng = np.random.default_rng(0)
  images = [rng.random((4, *shape), dtype=np.float32) for _ in range(STACK)]
  for training in (False, True):
    logits = np.asarray(stacked(np.concatenate(images, axis=-1), training=training)).reshape(4, STACK, 10)
    for k in range(STACK):
      expected = np.asarray(plain[k](images[k], training=training))
      np.testing.assert_allclose(logits[:, k], expected, atol=2e-5 * max(1.0, np.abs(expected).max()))


def test_shortcut_a_pads_each_network_within_its_own_channels():
  x = np.random.default_rng(0).uniform(size=(2, 7, 7, 2 * 16)).astype(np.float32)
  out = np.asarray(models.ShortcutA(32, 2, stack=2)(x))
  assert out.shape == (2, 4, 4, 64)
  for k in range(2):
    block = out[..., 32 * k:32 * (k + 1)]
    np.testing.assert_array_equal(block[..., 8:24], x[:, ::2, ::2, 16 * k:16 * (k + 1)])
    assert not block[..., :8].any() and not block[..., 24:].any()
