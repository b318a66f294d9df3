"""What a new evaluator costs: a config, an `evaluate` and one registry entry. A toy evaluator registered here (its
module is this file) is run, recorded and written by the experiment with no other file touched."""

import dataclasses
import json
import os
import sys

import numpy as np
import pytest

from tfrobust import config as config_lib
from tfrobust import evaluators


@dataclasses.dataclass(frozen=True)
class ToyConfig:
  """The toy evaluator's config: how many test examples it scores."""
  examples: int = 20

  def validate(self):
    if self.examples <= 0:
      raise ValueError("examples must be > 0")
    return self

  def hparams(self):
    return dataclasses.asdict(self)


def evaluate(model, dataset, config, *, strategy=None, progress=True):
  """Mean logit of the first `examples` test images, a scalar, a figure and per-example outcomes."""
  del strategy, progress
  from matplotlib.figure import Figure
  logits = np.asarray(model(dataset.x_test[:config.examples], training=False))
  fig = Figure(figsize=(2, 2))
  fig.add_subplot(1, 1, 1).plot(logits.mean(axis=1))
  correct = (logits.argmax(axis=1) == dataset.y_test[:config.examples])[None]
  from tfrobust.records.run import ExampleCurve
  return evaluators.Evaluation(
      section={"mean_logit": float(logits.mean())}, scalars={"toy/mean_logit": float(logits.mean())},
      figures={"toy.png": fig}, examples={("toy", "inf"): ExampleCurve("toy", "inf", np.array([0.0]), correct)},
      text="toy")


TOY = evaluators.Evaluator("toy", ToyConfig, module=__name__)


def test_a_registered_toy_evaluator_is_run_recorded_and_written(monkeypatch, tmp_path):
  from tfrobust.experiment import run as run_lib
  from tfrobust.records import run as run_records
  monkeypatch.setattr(evaluators, "REGISTRY", evaluators.REGISTRY + (TOY,))
  experiment = config_lib.ExperimentConfig(train=config_lib.TrainConfig(epochs=1), evaluators={"toy": ToyConfig()})
  out = str(tmp_path / "run")
  result = run_lib.run_experiment(experiment, out, progress=False)
  assert set(result["toy"]) == {"mean_logit"} and "toy_s" in result["timings"]
  assert json.load(open(os.path.join(out, "hparams.json")))["evaluators"]["toy"] == {"examples": 20}
  assert os.path.getsize(os.path.join(out, "toy.png")) > 500
  curve = run_records.read_examples(out).curves[("toy", "inf")]
  assert curve.correct.shape == (1, 20)
  from tensorboard.backend.event_processing import event_accumulator
  acc = event_accumulator.EventAccumulator(os.path.join(out, "tensorboard"), size_guidance={"tensors": 0})
  acc.Reload()
  assert "toy/mean_logit" in acc.Tags()["tensors"]


def test_tags_outside_the_evaluators_name_are_refused(monkeypatch):
  bad = evaluators.Evaluation(section={}, scalars={"mean_logit": 1.0})
  monkeypatch.setattr(sys.modules[__name__], "evaluate", lambda *a, **k: bad)
  with pytest.raises(ValueError, match="must start with 'toy/'"):
    TOY.evaluate(None, None, ToyConfig())
