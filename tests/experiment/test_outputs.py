"""What the experiment writes of evaluators' Evaluations (experiment/outputs.py): the clean per-example outcome
against the model's own predictions (Keras predict, inference mode) on a tiny network whose BatchNorm and Dropout
would change them in training mode; PNGs, examples.npz and TensorBoard scalars from hand-made Evaluations, read
back with numpy's np.load and TensorFlow's summary_iterator (not tfrobust's readers)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tfrobust.evaluators import Evaluation
from tfrobust.experiment import outputs
from tfrobust.records.run import ExampleCurve


@pytest.fixture(scope="module")
def model_and_data():
  """A 4x4-input network with BatchNorm (moving statistics far from the batch's) and Dropout, and 25 images."""
  keras.utils.set_random_seed(0)
  inputs = keras.Input((4, 4, 1))
  bn = layers.BatchNormalization()
  hidden = layers.Dropout(0.5)(layers.ReLU()(bn(layers.Dense(16)(layers.Flatten()(inputs)))))
  model = keras.Model(inputs, layers.Dense(10)(hidden))
  rng = np.random.default_rng(0)
  bn.moving_mean.assign(rng.normal(size=16))
  bn.moving_variance.assign(rng.uniform(0.2, 3.0, size=16))
  x = rng.uniform(size=(25, 4, 4, 1)).astype(np.float32)
  return model, x


def test_clean_correct_is_the_models_own_inference_mode_prediction(model_and_data):
  model, x = model_and_data
  predicted = np.argmax(model.predict(x, batch_size=25, verbose=0), axis=1)
  assert not np.array_equal(np.argmax(model(x, training=True), axis=1), predicted)  # the modes differ here
  y = np.where(np.arange(25) % 3 == 0, (predicted + 1) % 10, predicted)  # every third label wrong
  got = outputs.clean_correct(model, x, y, batch_size=7)  # 4 batches, the last one of 4
  np.testing.assert_array_equal(got, np.arange(25) % 3 != 0)
  assert got.dtype == bool
  assert outputs.clean_correct(model, x[:0], y[:0], batch_size=7).shape == (0,)


def _figure(value):
  fig = Figure(figsize=(2, 2))
  FigureCanvasAgg(fig)
  fig.add_subplot(1, 1, 1).plot([0, 1], [0, value])
  return fig


def _evaluations():
  eps = np.array([0.0, 0.1, 0.2])
  correct = np.array([[1, 1, 1, 0], [1, 0, 1, 0], [0, 0, 1, 0]], bool)
  return {
      "a": Evaluation(section={"n": 1}, scalars={"a/x": 1.5, "a/skipped": None},
                      curves={"a/curve": ((0, 0.25), (3, 0.75))}, figures={"a.png": _figure(1)},
                      examples={("pgd", "linf"): ExampleCurve("pgd", "linf", eps, correct)}),
      "b": Evaluation(section={"n": 2}, scalars={"b/y": -2.0}, figures={"b.png": _figure(2)},
                      examples={("fgsm", "l2"): ExampleCurve("fgsm", "l2", eps[:2], correct[:2])}),
  }


def test_every_evaluators_figures_sections_and_examples_are_written(tmp_path):
  evaluations = _evaluations()
  paths = outputs.write_figures(evaluations, str(tmp_path))
  assert sorted(paths) == sorted(str(tmp_path / name) for name in ("a.png", "b.png"))
  for name in ("a.png", "b.png"):
    assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert outputs.sections(evaluations) == {"a": {"n": 1}, "b": {"n": 2}}
  clean = np.array([True, False, True, True])
  outputs.write_examples(evaluations, str(tmp_path), clean)
  with np.load(tmp_path / "examples.npz") as f:
    np.testing.assert_array_equal(f["clean"], clean)
    np.testing.assert_array_equal(f["curve.pgd.linf.eps"], [0.0, 0.1, 0.2])
    np.testing.assert_array_equal(f["curve.pgd.linf.correct"], evaluations["a"].examples[("pgd", "linf")].correct)
    np.testing.assert_array_equal(f["curve.fgsm.l2.correct"], evaluations["b"].examples[("fgsm", "l2")].correct)


def test_scalars_at_step_0_and_curves_at_their_steps_in_tensorboard(tmp_path):
  writer = tf.summary.create_file_writer(str(tmp_path))
  outputs.write_tensorboard(_evaluations(), writer)
  writer.close()
  got = {}
  for path in tmp_path.iterdir():
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        got[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
  assert got == {("a/x", 0): 1.5, ("b/y", 0): -2.0, ("a/curve", 0): 0.25, ("a/curve", 3): 0.75}
