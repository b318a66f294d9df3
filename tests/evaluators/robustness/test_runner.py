"""evaluators/robustness runner.py: a pass over any subset, packed into full batches, gives each example what the
pass over all of them gives, in the order asked; APGD run k and APGD-T target t alone are apgd.py's own restarts
and targets; Square through the runner; one trace for every ε, pass, subset and seed."""

import numpy as np
import pytest
import tensorflow as tf

from tfrobust import models
from tfrobust.evaluators.robustness import apgd
from tfrobust.evaluators.robustness.runner import AttackRunner


@pytest.fixture(scope="module")
def small():
  """An untrained LeNet on 8x8 images whose pixels include exact 0s and 1s (so [0, 1] clipping binds), labelled
  with its own predictions but for 4 (APGD and Square attack only what the model gets right)."""
  rng = np.random.default_rng(0)
  x = rng.integers(0, 17, size=(24, 8, 8, 1)).astype(np.float32) / 16
  model = models.build_model("lenet", (8, 8, 1), 10, seed=1)
  y = np.argmax(model(x).numpy(), axis=1)
  y[[2, 9, 13, 20]] = (y[[2, 9, 13, 20]] + 1) % 10
  return model, x, y


def test_a_batch_the_model_gets_all_wrong_and_an_empty_share(small):
  """Square on a batch of misclassified examples only (it would query the model on none of them) and a batch of
  one: no empty batch reaches the convolutions."""
  model, x, y = small
  runner = AttackRunner(model, x, y, batch_size=2, seed=0)
  for attack in ("square", "apgd", "pgd"):
    out = runner.run(attack, "inf", indices=[2, 9, 13], eps=0.1, steps=2, queries=4, return_examples=True)
    assert not out["correct"].any()
    if attack != "pgd":  # APGD and Square leave what is misclassified already as it is; PGD attacks it all the same
      np.testing.assert_array_equal(out["x_adv"], x[[2, 9, 13]])


@pytest.mark.parametrize("attack,kw", [
    ("pgd", {"eps": 0.3, "step_size": 0.1, "steps": 3, "run": 2}),
    ("apgd", {"eps": 0.3, "steps": 4, "loss": "dlr", "run": 1}),
    ("apgd_t", {"eps": 0.3, "steps": 4, "target": 2, "run": 5}),
    ("square", {"eps": 0.3, "queries": 12}),
])
def test_a_subset_gets_what_the_whole_set_gets_in_the_order_asked(small, attack, kw):
  model, x, y = small
  whole = AttackRunner(model, x, y, batch_size=10, seed=4).run(attack, "inf", return_examples=True, **kw)
  subset = np.array([17, 3, 9, 4, 23, 0, 11])  # not sorted, packed into batches of 3 (the last one partial)
  part = AttackRunner(model, x, y, batch_size=3, seed=4).run(attack, "inf", indices=subset, return_examples=True,
                                                              **kw)
  np.testing.assert_array_equal(part["correct"], whole["correct"][subset])
  np.testing.assert_allclose(part["x_adv"], whole["x_adv"][subset], rtol=0, atol=1e-6)
  assert np.abs(whole["x_adv"] - x).max() > 0.1  # the attack moved the images


def test_an_empty_subset_costs_nothing(small):
  model, x, y = small
  out = AttackRunner(model, x, y, batch_size=10, seed=0).run("pgd", "inf", indices=[], eps=0.1, steps=2)
  assert out["correct"].shape == (0,)


def _model_fn(model):
  return lambda images: model(images, training=False)


def test_apgd_runs_alone_are_apgds_restarts_and_targets(trained_cnn):
  """Run k alone (what the early stop runs on the examples left) fools exactly the examples run k of apgd.py's own
  restart loop does: the seed shift APGD_STREAMS_PER_RUN is apgd.py's. Likewise APGD-T's target t, run t·R + r."""
  model, x, y = trained_cnn
  x, y = x[:60], y[:60]
  runner = AttackRunner(model, x, y, batch_size=60, seed=5)
  seeds = apgd.apgd_seeds(tf.range(len(x), dtype=tf.int64), 5)
  eps = 0.1  # where the runs disagree: the union is more than the first run
  kw = dict(eps=eps, norm="inf", steps=2)
  _, fooled = apgd.apgd(_model_fn(model), tf.constant(x), tf.constant(y), seeds, restarts=3, **kw)
  alone = [~runner.run("apgd", "inf", eps=eps, steps=2, run=k)["correct"] for k in range(3)]
  np.testing.assert_array_equal(fooled.numpy(), alone[0] | alone[1] | alone[2])
  assert 0 < alone[0].sum() < len(x) and ((alone[1] | alone[2]) & ~alone[0]).any()  # later runs add examples
  _, fooled_t = apgd.apgd_targeted(_model_fn(model), tf.constant(x), tf.constant(y), seeds, targets=3, restarts=2,
                                   **kw)
  union = np.zeros(len(x), bool)
  for t in range(3):
    for r in range(2):
      union |= ~runner.run("apgd_t", "inf", eps=eps, steps=2, target=t, run=2 * t + r)["correct"]
  np.testing.assert_array_equal(fooled_t.numpy(), union)


def test_compiled_steps_are_reused_across_runners_passes_and_subsets(small):
  model, x, y = small
  first = AttackRunner(model, x, y, batch_size=10, seed=0)
  for attack in ("pgd", "apgd_t", "square"):
    first.run(attack, "inf", eps=0.1, step_size=0.05, steps=2, queries=3)
    step = first.step(attack, "inf")
    second = AttackRunner(model, x[:17], y[:17], batch_size=5, seed=1)
    assert second.step(attack, "inf") is step
    traces = step.experimental_get_tracing_count()
    second.run(attack, "inf", indices=[1, 4, 16], eps=0.2, step_size=0.05, steps=3, restarts=2, run=3, target=1,
               queries=5)
    assert step.experimental_get_tracing_count() == traces, attack  # new data, ε, pass, subset, seed: no retrace
