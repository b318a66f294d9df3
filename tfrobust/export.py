"""SavedModel export and load: the serving signature every tfrobust tool agrees on.

Signature `serving_default` (also callable as `.serve`): input `images`, float32 [batch, H, W, C] on the
[0, 1] pixel scale; outputs `logits` [batch, classes] and `probabilities` (softmax of the logits).
The model runs in inference mode (BatchNorm moving statistics, no dropout). The variables stay reachable as
`.variables` / `.trainable_variables` so that the Hessian tools can differentiate the loaded model.
"""

import os
import shutil

import keras
import tensorflow as tf

from tfrobust.errors import UsageError

SIGNATURE = "serving_default"


def export_model(model, path):
  """Writes `model` to `path` as a SavedModel, atomically (a temporary folder renamed at the end)."""
  archive = keras.export.ExportArchive()
  archive.track(model)

  def serve(images):
    logits = model(images, training=False)
    return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

  spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32, name="images")
  archive.add_endpoint("serve", serve, input_signature=[spec])
  tmp = path.rstrip("/") + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  archive.write_out(tmp, verbose=False)
  shutil.rmtree(path, ignore_errors=True)
  os.replace(tmp, path)
  return path


class LoadedModel:
  """A SavedModel written by `export_model` (or any with the same signature), called like a Keras model."""

  def __init__(self, path):
    try:
      self._obj = tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.NotFoundError) as e:
      raise UsageError(f"--saved_model={path}: not a readable SavedModel ({type(e).__name__})") from None
    if SIGNATURE not in getattr(self._obj, "signatures", {}):
      raise UsageError(f"--saved_model={path}: has no '{SIGNATURE}' signature")
    sig = self._obj.signatures[SIGNATURE]
    spec = sig.structured_input_signature[1]
    if len(spec) != 1 or "logits" not in sig.structured_outputs:
      raise UsageError(f"--saved_model={path}: its signature must take one image tensor and return 'logits'")
    (self._input_name, self._spec), = spec.items()
    self._sig = sig

  @property
  def input_shape(self):
    return tuple(self._spec.shape)

  @property
  def trainable_variables(self):
    return list(getattr(self._obj, "trainable_variables", []))

  def __call__(self, images, training=False):
    del training  # The export is always in inference mode.
    return self._sig(**{self._input_name: tf.convert_to_tensor(images, tf.float32)})["logits"]
