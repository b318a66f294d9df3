"""Distribution: two logical CPU replicas train exactly like one (same global batch and seed)."""

import json

import pytest

from conftest import run_script

_COMPARE = r"""
import json, numpy as np, tensorflow as tf
from tfrobust import data, distribute, models
from tfrobust.train import sgd
from tfrobust.train.step import Trainer
distribute.split_cpu(2)
ds = data.load_digits()
def weights_after(strategy, batchnorm):
  t = Trainer(lambda: models.build_model("lenet", ds.input_shape, 10, batchnorm=batchnorm, seed=3), strategy,
              global_batch_size=64, steps_per_call=10)
  stream = data.training_stream(ds.x_train, ds.y_train, 64, seed=1, epochs=2)
  it = iter(strategy.experimental_distribute_dataset(stream))
  for _ in range(2):
    t.run_steps(it, np.full(10, 0.05, np.float32), 10, momentum=0.9, weight_decay=1e-4, nesterov=False)
  return t.model.get_weights(), t.loss_and_accuracy(ds.x_test, ds.y_test, 100)
out = {}
for bn in (False, True):
  w1, e1 = weights_after(tf.distribute.OneDeviceStrategy("/cpu:0"), bn)
  w2, e2 = weights_after(distribute.cpu_mirrored(2), bn)
  out[str(bn)] = {"max_abs_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2)),
                  "moved": max(float(np.max(np.abs(a))) for a in w1), "eval": [e1, e2]}
print("RESULT" + json.dumps(out))
"""


def test_two_replicas_equal_one_after_20_steps():
  proc = run_script(_COMPARE)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.split("RESULT", 1)[1])
  for bn, r in out.items():
    assert r["max_abs_diff"] <= 1e-5, (bn, r)
    assert r["eval"][0] == pytest.approx(r["eval"][1], abs=1e-5), (bn, r)
