"""Fixtures shared by the robustness evaluator's tests, built once per session: a LeNet trained on the digits
(test_evaluate.py, test_sequences.py, test_runner.py)."""

import keras
import pytest

from tfrobust import data, models


@pytest.fixture(scope="session")
def trained_cnn():
  """A LeNet trained for a few epochs on digits (≈ 90% test accuracy), and 200 test images."""
  ds = data.load_digits()
  model = models.build_model("lenet", ds.input_shape, 10, seed=0)
  model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  model.fit(ds.x_train, ds.y_train, epochs=12, batch_size=64, verbose=0)
  return model, ds.x_test[:200], ds.y_test[:200]
