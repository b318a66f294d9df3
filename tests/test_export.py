"""SavedModel export and load (export.py): the loaded model gives the Keras model's inference-mode logits (BatchNorm
moving statistics, no Dropout) and their softmax, keeps its variables reachable, is rewritten whole over an older
export, and one whose signature returns no logits is refused in one line. Reference: the Keras model itself
(model.predict). The exported model in use: tests/cli/test_main.py (test accuracy) and tests/cli/test_evaluate.py."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from tfrobust import export
from tfrobust.errors import UsageError


def _model(seed):
  keras.utils.set_random_seed(seed)
  inputs = keras.Input((4, 4, 1))
  bn = layers.BatchNormalization()
  hidden = layers.Dropout(0.5)(layers.ReLU()(bn(layers.Dense(8)(layers.Flatten()(inputs)))))
  model = keras.Model(inputs, layers.Dense(10)(hidden))
  rng = np.random.default_rng(seed)
  bn.moving_mean.assign(rng.normal(size=8))  # far from a batch's statistics: training mode would differ
  bn.moving_variance.assign(rng.uniform(0.2, 3.0, size=8))
  return model


@pytest.fixture(scope="module")
def x():
  return np.random.default_rng(1).uniform(size=(6, 4, 4, 1)).astype(np.float32)


def test_loaded_model_is_the_keras_model_in_inference_mode(tmp_path, x):
  model = _model(0)
  loaded = export.LoadedModel(export.export_model(model, str(tmp_path / "sm")))
  want = model.predict(x, verbose=0)
  np.testing.assert_allclose(loaded(x).numpy(), want, rtol=1e-5, atol=1e-6)
  probabilities = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"](images=tf.constant(x))
  np.testing.assert_allclose(probabilities["probabilities"].numpy(), tf.nn.softmax(want).numpy(), rtol=1e-5)
  assert loaded.input_shape == (None, 4, 4, 1)
  shapes = lambda variables: sorted(tuple(v.shape) for v in variables)  # noqa: E731
  assert shapes(loaded.trainable_variables) == shapes(model.trainable_variables)  # reachable: the Hessian needs them


def test_a_second_export_replaces_the_first_whole(tmp_path, x):
  path = str(tmp_path / "sm")
  export.export_model(_model(0), path)
  second = _model(1)
  export.export_model(second, path)
  assert sorted(os.listdir(tmp_path)) == ["sm"]  # no temporary folder left beside it
  np.testing.assert_allclose(export.LoadedModel(path)(x).numpy(), second.predict(x, verbose=0), rtol=1e-5,
                             atol=1e-6)


def test_a_signature_without_logits_is_refused(tmp_path):
  module = tf.Module()
  module.serve = tf.function(lambda images: {"scores": images[:, 0, 0, :]},
                             input_signature=[tf.TensorSpec([None, 4, 4, 1], tf.float32)])
  tf.saved_model.save(module, str(tmp_path / "scores"), signatures={"serving_default": module.serve})
  with pytest.raises(UsageError, match="its signature must take one image tensor and return 'logits'"):
    export.LoadedModel(str(tmp_path / "scores"))
