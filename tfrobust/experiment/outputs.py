"""Writes what evaluators hand back (tfrobust.evaluators.Evaluation), the same way for every evaluator: figures
as PNGs, scalars and curves in TensorBoard, per-example outcomes in examples.npz (through tfrobust.records). The
experiment (run.py) and the eval-only command (tfrobust.cli.evaluate) both call here, so no evaluator ever opens a
file or a writer itself.
"""

import os

import numpy as np
import tensorflow as tf

from tfrobust import io
from tfrobust import models
from tfrobust.records import run as run_records

FIGURE_DPI = 100


def clean_correct(model, x, y, batch_size):
  """Per test example, whether `model` (images in [0, 1] → logits) classifies it right, in inference mode."""
  return models.predict_classes(model, x, batch_size)[0] == np.asarray(y)


def sections(evaluations):
  """{name: section} of result.json for {name: Evaluation}."""
  return {name: ev.section for name, ev in evaluations.items()}


def write_figures(evaluations, out_dir):
  """Every evaluator's figures into `out_dir`, atomically; returns the paths."""
  paths = []
  for ev in evaluations.values():
    for file_name, fig in ev.figures.items():
      paths.append(io.write_png(fig, os.path.join(out_dir, file_name), dpi=FIGURE_DPI))
  return paths


def write_examples(evaluations, out_dir, clean):
  """examples.npz: `clean` (bool per test example) and every evaluator's per-example curves."""
  curves = {key: curve for ev in evaluations.values() for key, curve in ev.examples.items()}
  return run_records.write_examples(out_dir, run_records.Examples(clean=clean, curves=curves))


def write_tensorboard(evaluations, writer):
  """Every evaluator's scalars (at step 0) and curves (their own steps) to a tf.summary writer."""
  with writer.as_default():
    for ev in evaluations.values():
      for tag, value in ev.scalars.items():
        if value is not None:
          tf.summary.scalar(tag, value, step=0)
      for tag, series in ev.curves.items():
        for step, value in series:
          tf.summary.scalar(tag, value, step=step)
  writer.flush()
