"""The stacked trainer against its second code path, today's `step.Trainer`: K networks stacked and the same K
trained alone, from the same initial weights and data order, agree step by step (weights, loss, accuracy) for
every architecture; a stopped or diverged network takes no update while the others go on; two replicas train a
stack exactly like one; each network's batches are those of its lone run."""

import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_script
from tfrobust import data, models
from tfrobust.train import stacked_data
from tfrobust.train.stacked import StackedTrainer
from tfrobust.train.step import Trainer

BATCH, STEPS_PER_CALL, CALLS = 16, 2, 2
# One call, not CALLS, for these (seconds a step in float64): the seam between calls is checked on the others.
LARGE = ("resnet20", "vgg11")
EVAL = 100  # test images each network's loss and accuracy are compared on
# Per network: seed, learning rate, momentum, weight decay, Nesterov. Different in every column, so that a
# hyperparameter taken from the wrong network shows.
NETWORKS = [(0, 0.05, 0.9, 1e-3, False), (1, 0.1, 0.0, 0.0, False), (2, 0.02, 0.5, 5e-4, True)]
BATCHNORM = ("c1", "resnet20")  # BatchNorm per network is checked on these
# Both sides train in float64. Grouped convolutions and batched matmuls sum in another order than the plain layers,
# and in float32 a pre-activation within rounding of 0 (one in ~10^4 in ResNet-20 on digits, seed 1) takes the other
# side of a ReLU: that step's gradient then differs by a whole unit's share, 20% of the update in that layer.
# In float64 the rounding is 10^-16 and a weight differs by less than ATOL.
ATOL = 1e-9


@pytest.fixture(autouse=True)
def _every_test_in_float64(float64):  # conftest.float64
  yield


def _column(i):
  return [n[i] for n in NETWORKS]


@pytest.fixture(scope="module")
def ds():
  return data.load_digits()


def _plain(name, ds, seed, batchnorm):
  return models.build_model(name, ds.input_shape, ds.num_classes, batchnorm=batchnorm, seed=seed)


def _alone(trainer, ds, network, initial, calls=CALLS):
  """Network trained alone by step.Trainer from `initial`: its weights after the steps, the per-call sums, its
  test-set loss and accuracy."""
  seed, lr, mu, wd, nesterov = network
  trainer.reset(initial)
  it = iter(data.training_stream(ds.x_train, ds.y_train, BATCH, seed=seed, epochs=1))
  sums = [trainer.run_steps(it, np.full(STEPS_PER_CALL, lr, np.float32), STEPS_PER_CALL, momentum=mu,
                            weight_decay=wd, nesterov=nesterov) for _ in range(calls)]
  return trainer.model.get_weights(), sums, trainer.loss_and_accuracy(ds.x_test[:EVAL], ds.y_test[:EVAL], EVAL)


def _stacked(name, ds, batchnorm, initial, strategy=None):
  k = len(initial)
  trainer = StackedTrainer(lambda: models.build_model(name, ds.input_shape, ds.num_classes, batchnorm=batchnorm,
                                                      stack=k),
                           strategy or tf.distribute.get_strategy(), stack=k, global_batch_size=BATCH,
                           steps_per_call=STEPS_PER_CALL)
  trainer.reset(initial)
  stream = stacked_data.stacked_stream(ds.x_train, ds.y_train, BATCH, seeds=_column(0)[:k], epochs=1)
  return trainer, iter(trainer.strategy.experimental_distribute_dataset(stream))


def _run(trainer, it, active=(True,) * len(NETWORKS)):
  lrs = np.tile(np.array(_column(1), np.float32), (STEPS_PER_CALL, 1))
  return trainer.run_steps(it, lrs, STEPS_PER_CALL, momentum=_column(2), weight_decay=_column(3),
                           nesterov=_column(4), active=active)


@pytest.mark.parametrize("name", models.MODELS)
def test_a_stack_trains_each_network_as_it_trains_alone(name, ds):
  batchnorm, calls = name in BATCHNORM, 1 if name in LARGE else CALLS
  initial = [_plain(name, ds, seed, batchnorm).get_weights() for seed in _column(0)]
  trainer, it = _stacked(name, ds, batchnorm, initial)
  sums = [_run(trainer, it) for _ in range(calls)]
  losses, accuracies = trainer.loss_and_accuracy(ds.x_test[:EVAL], ds.y_test[:EVAL], EVAL)
  lone = Trainer(lambda: _plain(name, ds, 0, batchnorm), tf.distribute.get_strategy(), global_batch_size=BATCH,
                 steps_per_call=STEPS_PER_CALL)
  for k, network in enumerate(NETWORKS):
    weights, alone, (loss, accuracy) = _alone(lone, ds, network, initial[k], calls)
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(weights, initial[k]))
    assert moved > 1e4 * ATOL, (name, k, moved)  # the steps changed the weights: the comparison means something
    for a, b in zip(trainer.network_weights(k), weights):
      np.testing.assert_allclose(a, b, atol=ATOL, err_msg=f"{name} network {k}")
    for s, a in zip(sums, alone):
      assert s["loss_sum"][k] == pytest.approx(a["loss_sum"], rel=1e-6), (name, k)
      assert s["correct"][k] == a["correct"] and s["steps"][k] == STEPS_PER_CALL, (name, k)
      assert s["grad_norm_sum"][k] == pytest.approx(a["grad_norm_sum"], rel=1e-6), (name, k)
    assert losses[k] == pytest.approx(loss, rel=1e-6) and accuracies[k] == pytest.approx(accuracy, abs=1e-9)


def _assert_trained_as_alone(trainer, ds, name, batchnorm, initial, networks):
  """The stack's networks `networks` hold the weights their lone runs (one call) reach from `initial`."""
  lone = Trainer(lambda: _plain(name, ds, 0, batchnorm), tf.distribute.get_strategy(), global_batch_size=BATCH,
                 steps_per_call=STEPS_PER_CALL)
  for k in networks:
    weights, _, _ = _alone(lone, ds, NETWORKS[k], initial[k], calls=1)
    for a, b in zip(trainer.network_weights(k), weights):
      np.testing.assert_allclose(a, b, atol=ATOL)


def test_a_stopped_network_keeps_its_weights_and_statistics_while_the_others_train(ds):
  """active=False (the driver's stop, e.g. a reached loss target) leaves that network's weights, momentum and
  BatchNorm statistics exactly as they were; the other networks train as they train alone."""
  initial = [_plain("c1", ds, seed, True).get_weights() for seed in _column(0)]
  trainer, it = _stacked("c1", ds, True, initial)
  out = _run(trainer, it, active=(True, False, True))
  assert list(out["steps"]) == [STEPS_PER_CALL, 0, STEPS_PER_CALL] and list(out["active"]) == [True, False, True]
  assert all(np.array_equal(a, b) for a, b in zip(trainer.network_weights(1), initial[1]))
  _assert_trained_as_alone(trainer, ds, "c1", True, initial, (0, 2))


def test_a_diverging_network_stops_and_the_others_go_on(ds):
  """Network 1's weights scaled so far that its logits overflow: its loss is reported non-finite at its first step,
  it takes no update (its weights stay finite, as they were), and networks 0 and 2 train as they train alone."""
  initial = [_plain("mlp", ds, seed, False).get_weights() for seed in _column(0)]
  initial[1] = [w * 1e200 for w in initial[1]]  # float64: logits of order 1e600 are inf
  trainer, it = _stacked("mlp", ds, False, initial)
  out = _run(trainer, it)
  assert list(out["first_nonfinite"]) == [-1, 0, -1] and list(out["active"]) == [True, False, True]
  assert list(out["steps"]) == [STEPS_PER_CALL, 0, STEPS_PER_CALL] and np.all(np.isfinite(out["loss_sum"]))
  assert not np.isfinite(out["stop_grad_norm"][1])
  assert all(np.array_equal(a, b) for a, b in zip(trainer.network_weights(1), initial[1]))
  _assert_trained_as_alone(trainer, ds, "mlp", False, initial, (0, 2))


@pytest.mark.parametrize("augment", ["none", "crop_flip"])
def test_each_network_gets_the_batches_of_its_lone_run(ds, augment):
  seeds = [3, 0, 7]
  stream = stacked_data.stacked_stream(ds.x_train, ds.y_train, 64, seeds=seeds, epochs=2, start_step=20,
                                       augment=augment)
  alone = [iter(data.training_stream(ds.x_train, ds.y_train, 64, seed=s, epochs=2, start_step=20, augment=augment))
           for s in seeds]
  steps = 0
  for images, labels in stream:  # 2 epochs of 22 steps from step 20: across an epoch's end
    assert images.shape == (64, 8, 8, 3) and labels.shape == (64, 3)
    for k, it in enumerate(alone):
      x, y = next(it)
      np.testing.assert_array_equal(images[..., k:k + 1], x)
      np.testing.assert_array_equal(labels[:, k], y)
    steps += 1
  assert steps == 2 * (len(ds.x_train) // 64) - 20


_REPLICAS = r"""
import json, keras, numpy as np, tensorflow as tf
from tfrobust import data, distribute, models
from tfrobust.train import stacked_data
from tfrobust.train.stacked import StackedTrainer
distribute.split_cpu(2)
ds = data.load_digits()
def after(strategy, name, batchnorm):
  t = StackedTrainer(lambda: models.build_model(name, ds.input_shape, 10, batchnorm=batchnorm, stack=3), strategy,
                     stack=3, global_batch_size=32, steps_per_call=5)
  t.reset([models.build_model(name, ds.input_shape, 10, batchnorm=batchnorm, seed=s).get_weights() for s in (4, 5, 6)])
  stream = stacked_data.stacked_stream(ds.x_train, ds.y_train, 32, seeds=(4, 5, 6), epochs=1)
  it = iter(strategy.experimental_distribute_dataset(stream))
  lrs = np.tile([0.05, 0.1, 0.02], (5, 1))
  sums = [t.run_steps(it, lrs, 5, momentum=[0.9, 0, 0.5], weight_decay=[1e-3, 0, 0], nesterov=[0, 0, 1],
                      active=[True, True, False]) for _ in range(2)]
  return t.model.get_weights(), sums, t.loss_and_accuracy(ds.x_test, ds.y_test, 120)
out = {}
for name, bn in (("c1", True),):  # convolution, BatchNorm synchronized per network, dense: every kind of layer
  w1, s1, e1 = after(tf.distribute.OneDeviceStrategy("/cpu:0"), name, bn)
  w2, s2, e2 = after(distribute.cpu_mirrored(2), name, bn)
  out[name] = {"max_abs_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2)),
               "loss": [[float(x) for x in s["loss_sum"]] for s in (s1[-1], s2[-1])],
               "steps": [[int(x) for x in s["steps"]] for s in (s1[-1], s2[-1])],
               "eval": [[float(x) for x in e[0]] for e in (e1, e2)]}
print("RESULT" + json.dumps(out))
"""


def test_two_replicas_train_a_stack_exactly_like_one():
  """Each replica takes half of every network's batch (synchronized BatchNorm per network in c1)."""
  proc = run_script(_REPLICAS)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.split("RESULT", 1)[1])
  for name, r in out.items():
    assert r["max_abs_diff"] <= 1e-5, (name, r)
    assert r["loss"][0] == pytest.approx(r["loss"][1], rel=1e-5), (name, r)
    assert r["steps"] == [[5, 5, 0]] * 2 and r["eval"][0] == pytest.approx(r["eval"][1], rel=1e-5), (name, r)
