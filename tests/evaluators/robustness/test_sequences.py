"""evaluators/robustness sequences.py: the early stop against the exhaustive sweep on PGD with fixed seeds (per ε
identical, across ε the running AND, so never a higher robust accuracy), the autoattack sequence as the union of
its stages, the passes of each attack, and the work shrinking with what is left."""

import numpy as np
import pytest

from tfrobust.evaluators.robustness import sequences
from tfrobust.evaluators.robustness.config import RobustnessConfig
from tfrobust.evaluators.robustness.runner import AttackRunner
from tfrobust.evaluators.robustness.sequences import Budget, passes, sweep

GRID = (0.0, 0.02, 0.05, 0.1, 0.2)


def _budget(**kw):
  return Budget.of(RobustnessConfig(**kw))


def _step_size(eps, steps):
  return RobustnessConfig().step_size(eps, steps)


@pytest.fixture(scope="module")
def pgd_both_ways(trained_cnn):
  """PGD-5 × 3 restarts on 120 digits: the early-stop sweep (batches of 32, so the survivors are re-packed) and
  the exhaustive one (every restart in-graph on every example at every ε, as before the early stop)."""
  model, x, y = trained_cnn
  x, y = x[:120], y[:120]
  budget = _budget(pgd_steps=5, pgd_restarts=3)
  early, attacked = sweep(AttackRunner(model, x, y, batch_size=32, seed=7), "pgd", "inf", GRID, budget, classes=10,
                          step_size=_step_size)
  runner = AttackRunner(model, x, y, batch_size=50, seed=7)
  exhaustive = np.stack([runner.run("pgd", "inf", eps=e, step_size=_step_size(e, 5), steps=5, restarts=3)["correct"]
                         for e in GRID])
  return early, attacked, exhaustive


def test_early_stop_is_the_running_and_of_the_exhaustive_sweep(pgd_both_ways):
  """Per example: at each ε the early stop's verdict is the exhaustive one AND'ed over every smaller ε — identical
  wherever the exhaustive outcome is monotone in ε, fooled where it is not; never a higher robust accuracy."""
  early, _, exhaustive = pgd_both_ways
  np.testing.assert_array_equal(early, np.logical_and.accumulate(exhaustive, axis=0))
  assert not np.any(early & ~exhaustive)
  assert np.all(early.mean(axis=1) <= exhaustive.mean(axis=1))
  assert 0.2 < early[2].mean() < early[0].mean()  # the grid is not trivial: examples fall at inner ε


class _TableRunner:
  """A stand-in runner whose pass r at ε fools example n exactly when table[ε][r, n] is False; it records which
  examples each pass was asked to attack."""

  def __init__(self, table):
    self.table, self.asked = table, []
    self.num_examples = next(iter(table.values())).shape[1]

  def run(self, attack, norm, *, indices, eps, run=0, **_):
    del attack, norm
    self.asked.append((eps, run, list(indices)))
    return {"correct": self.table[eps][run, indices]}


def test_where_the_exhaustive_sweep_is_not_monotone_the_early_stop_is_lower():
  """An attack that fools example 1 at ε = 0.1 and misses it at 0.2 (as PGD can, with its longer steps): the
  early stop keeps it fooled at 0.2 (the point found at 0.1 lies in the 0.2-ball), so accuracy is lower there,
  and each pass is asked only for what every earlier pass and smaller ε left."""
  ok = np.ones((2, 4), bool)
  table = {0.0: ok.copy(), 0.1: ok.copy(), 0.2: ok.copy()}
  table[0.0][:, 3] = False  # wrong before any attack
  table[0.1][0, 1] = False  # fooled at 0.1 by restart 0 only
  table[0.2][1, 2] = False  # fooled at 0.2 by restart 1 only; example 1 not fooled at 0.2 at all
  runner = _TableRunner(table)
  correct, attacked = sweep(runner, "pgd", "inf", (0.0, 0.1, 0.2), _budget(pgd_restarts=2), classes=10,
                            step_size=_step_size)
  exhaustive = np.stack([table[e].all(axis=0) for e in (0.0, 0.1, 0.2)])
  np.testing.assert_array_equal(correct, [[1, 1, 1, 0], [1, 0, 1, 0], [1, 0, 0, 0]])
  np.testing.assert_array_equal(correct, np.logical_and.accumulate(exhaustive, axis=0))
  assert exhaustive[2, 1] and correct.mean(axis=1)[2] < exhaustive.mean(axis=1)[2]
  assert runner.asked == [(0.0, 0, [0, 1, 2, 3]), (0.1, 0, [0, 1, 2]), (0.1, 1, [0, 2]), (0.2, 0, [0, 2]),
                          (0.2, 1, [0, 2])]
  assert attacked.tolist() == [4, 5, 4]


def test_each_eps_alone_is_identical_to_the_exhaustive_restarts(trained_cnn, pgd_both_ways):
  """With only ε = 0 before it, the restarts' early stop (each restart on what earlier ones left) finds exactly
  the examples the in-graph restarts do."""
  model, x, y = trained_cnn
  _, _, exhaustive = pgd_both_ways
  runner = AttackRunner(model, x[:120], y[:120], batch_size=32, seed=7)
  for i in (2, 3):
    correct, attacked = sweep(runner, "pgd", "inf", (0.0, GRID[i]), _budget(pgd_steps=5, pgd_restarts=3),
                              classes=10, step_size=_step_size)
    np.testing.assert_array_equal(correct[1], exhaustive[0] & exhaustive[i])
    assert attacked[1] < 3 * exhaustive[0].sum()  # later restarts skipped what the first one fooled


def test_the_work_shrinks_with_what_is_left(pgd_both_ways):
  early, attacked, _ = pgd_both_ways
  assert attacked[0] == 120  # ε = 0: one pass over everything
  for i in range(1, len(GRID)):
    assert early[i - 1].sum() <= attacked[i] <= 3 * early[i - 1].sum()  # only the survivors of the smaller ε
  assert attacked.sum() < 0.7 * 3 * 120 * len(GRID)  # the exhaustive sweep: 3 restarts × 120 examples × 5 ε


def test_autoattack_is_the_union_of_its_stages(trained_cnn):
  """Each stage only on the examples the earlier ones left robust gives, example by example, what every stage on
  every example gives: fooled by APGD-CE, by some APGD-T target, or by Square."""
  model, x, y = trained_cnn
  x, y = x[:40], y[:40]
  eps = 0.1
  budget = _budget(apgd_steps=8, square_queries=25)
  runner = AttackRunner(model, x, y, batch_size=16, seed=3)
  correct, attacked = sweep(runner, "autoattack", "inf", (0.0, eps), budget, classes=10, step_size=_step_size)
  every = AttackRunner(model, x, y, batch_size=64, seed=3)
  union = every.run("probe", "inf")["correct"] & every.run("apgd", "inf", eps=eps, steps=8, loss="ce")["correct"]
  for t in range(9):
    union &= every.run("apgd_t", "inf", eps=eps, steps=8, target=t, run=t)["correct"]
  union &= every.run("square", "inf", eps=eps, queries=25)["correct"]
  np.testing.assert_array_equal(correct[1], union)
  assert attacked[1] < 11 * correct[0].sum()  # later stages skipped what APGD-CE fooled


def test_passes_of_each_attack():
  budget = _budget(pgd_steps=20, pgd_restarts=5, apgd_steps=100, apgd_restarts=2, square_queries=5000)
  kinds = lambda attack, classes=10: [p["attack"] for p in passes(attack, 0.1, budget, classes=classes,  # noqa
                                                                    step_size=_step_size)]
  assert kinds("pgd") == ["pgd"] * 5 and kinds("fgsm") == ["fgsm"] and kinds("square") == ["square"]
  assert [p["run"] for p in passes("pgd", 0.1, budget, classes=10, step_size=_step_size)] == [0, 1, 2, 3, 4]
  assert kinds("apgd_dlr") == ["apgd"] * 2
  assert kinds("autoattack") == ["apgd"] * 2 + ["apgd_t"] * 18 + ["square"]
  targeted = [p for p in passes("autoattack", 0.1, budget, classes=10, step_size=_step_size) if p["attack"] == "apgd_t"]
  assert [(p["target"], p["run"]) for p in targeted[:4]] == [(0, 0), (0, 1), (1, 2), (1, 3)]  # apgd_targeted's k
  assert len([k for k in kinds("autoattack", classes=5) if k == "apgd_t"]) == 2 * 4  # at most classes − 1 targets
  assert kinds("autoattack", classes=3) == ["apgd"] * 4 + ["square"]  # untargeted DLR: too few classes to target
  assert kinds("autoattack", classes=2) == ["apgd"] * 2 + ["square"]
  zero = passes("autoattack", 0.0, budget, classes=10, step_size=_step_size)
  assert zero == [{"attack": "apgd", "loss": "ce", "run": 0, **sequences.ZERO_EPS_PASS}]
  with pytest.raises(ValueError, match="strictly ascending"):
    sweep(None, "pgd", "inf", (0.0, 0.1, 0.1), budget, classes=10, step_size=_step_size)
