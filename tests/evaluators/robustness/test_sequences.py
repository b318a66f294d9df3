"""evaluators/robustness sequences.py: the early stop against the exhaustive sweep on PGD with fixed seeds
(descending: the exhaustive outcomes OR'ed from the top; ascending: their running AND), an attack that is not
monotone in ε, the autoattack sequence as the union of its stages, the passes of each attack, and the work
shrinking with what is left."""

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


def _descending(exhaustive):
  """What the descending early stop must give (sequences.py): the clean check, then robust at ε_i where some
  ε_j ≥ ε_i (j ≥ 1) left the example robust."""
  out = np.logical_or.accumulate(exhaustive[:0:-1], axis=0)[::-1] & exhaustive[0]
  return np.concatenate([exhaustive[:1], out])


@pytest.fixture(scope="module")
def pgd_both_ways(trained_cnn):
  """PGD-5 × 3 restarts on 120 digits: the early-stop sweep in both orders (batches of 32, so the survivors are
  re-packed) and the exhaustive one (every pass on every example at every ε)."""
  model, x, y = trained_cnn
  x, y = x[:120], y[:120]
  budget = _budget(pgd_steps=5, pgd_restarts=3)
  sweeps = {order: sweep(AttackRunner(model, x, y, batch_size=32, seed=7), "pgd", "inf", GRID, budget, classes=10,
                         step_size=_step_size, order=order) for order in sequences.ORDERS}
  runner = AttackRunner(model, x, y, batch_size=50, seed=7)
  exhaustive = np.stack([runner.run("pgd", "inf", eps=e, step_size=_step_size(e, 5), steps=5, restarts=3)["correct"]
                         for e in GRID])
  return sweeps, exhaustive


def test_descending_is_the_exhaustive_sweep_or_ed_from_the_top(pgd_both_ways):
  """Per example: robust at ε where the exhaustive sweep left it robust at ε or some larger ε — identical to it
  wherever its outcome is monotone in ε (here everywhere)."""
  sweeps, exhaustive = pgd_both_ways
  correct, _ = sweeps["descending"]
  np.testing.assert_array_equal(correct, _descending(exhaustive))
  np.testing.assert_array_equal(correct, exhaustive)  # monotone on this network
  assert 0.2 < correct[2].mean() < correct[0].mean()  # the grid is not trivial: examples fall at inner ε


def test_ascending_is_the_running_and_of_the_exhaustive_sweep(pgd_both_ways):
  """Per example: at each ε the verdict is the exhaustive one AND'ed over every smaller ε — never a higher robust
  accuracy."""
  sweeps, exhaustive = pgd_both_ways
  correct, _ = sweeps["ascending"]
  np.testing.assert_array_equal(correct, np.logical_and.accumulate(exhaustive, axis=0))
  assert not np.any(correct & ~exhaustive)


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


def _table():
  """APGD-CE with 2 restarts that fools example 1 at ε = 0.1 and misses it at 0.2 (as an attack whose steps scale
  with ε can); example 3 is wrong before any attack, example 2 falls at 0.2 to restart 1 only."""
  ok = np.ones((2, 4), bool)
  table = {0.0: ok.copy(), 0.1: ok.copy(), 0.2: ok.copy()}
  table[0.0][:, 3] = False
  table[0.1][0, 1] = False
  table[0.2][1, 2] = False
  return table, np.stack([table[e].all(axis=0) for e in (0.0, 0.1, 0.2)])


def test_where_the_exhaustive_sweep_is_not_monotone():
  """Descending counts example 1 robust at 0.1 (the attack failed on it at 0.2: it is not attacked again), higher
  than the exhaustive sweep there; ascending keeps it fooled at 0.2 (the point found at 0.1 lies in the 0.2-ball),
  lower there. Each pass is asked only for what the earlier passes and ε left."""
  budget = _budget(apgd_restarts=2)
  table, exhaustive = _table()
  runner = _TableRunner(table)
  correct, attacked = sweep(runner, "apgd_ce", "inf", (0.0, 0.1, 0.2), budget, classes=10, step_size=_step_size)
  np.testing.assert_array_equal(correct, [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 0, 0]])
  np.testing.assert_array_equal(correct, _descending(exhaustive))
  assert not exhaustive[1, 1] and correct[1, 1]
  assert runner.asked == [(0.0, 0, [0, 1, 2, 3]), (0.2, 0, [0, 1, 2]), (0.2, 1, [0, 1, 2]), (0.1, 0, [2]),
                          (0.1, 1, [2])]
  assert attacked.tolist() == [4, 2, 6]
  runner = _TableRunner(table)
  correct, attacked = sweep(runner, "apgd_ce", "inf", (0.0, 0.1, 0.2), budget, classes=10, step_size=_step_size,
                            order="ascending")
  np.testing.assert_array_equal(correct, [[1, 1, 1, 0], [1, 0, 1, 0], [1, 0, 0, 0]])
  np.testing.assert_array_equal(correct, np.logical_and.accumulate(exhaustive, axis=0))
  assert runner.asked == [(0.0, 0, [0, 1, 2, 3]), (0.1, 0, [0, 1, 2]), (0.1, 1, [0, 2]), (0.2, 0, [0, 2]),
                          (0.2, 1, [0, 2])]
  assert attacked.tolist() == [4, 5, 4]


def test_the_work_shrinks_with_what_is_left(pgd_both_ways):
  """Descending: the largest ε attacks every example right at ε = 0, each smaller ε only those the next larger ε
  fooled (one pass: the restarts are side by side); far less than ascending."""
  sweeps, _ = pgd_both_ways
  correct, attacked = sweeps["descending"]
  assert attacked[0] == 120 and attacked[-1] == correct[0].sum()
  for i in range(1, len(GRID) - 1):
    assert attacked[i] == correct[0].sum() - correct[i + 1].sum()
  assert attacked.sum() < sweeps["ascending"][1].sum()


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
  assert kinds("pgd") == ["pgd"] and kinds("fgsm") == ["fgsm"] and kinds("square") == ["square"]
  assert passes("pgd", 0.1, budget, classes=10, step_size=_step_size)[0]["restarts"] == 5  # side by side
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
  with pytest.raises(ValueError, match="order="):
    sweep(None, "pgd", "inf", (0.0, 0.1), budget, classes=10, step_size=_step_size, order="random")


class _ThresholdRunner:
  """A stand-in runner that fools example n exactly at every ε ≥ threshold[n]; it counts its passes."""

  def __init__(self, threshold):
    self.threshold, self.passes = np.asarray(threshold), 0
    self.num_examples = len(threshold)

  def run(self, attack, norm, *, indices, eps, **_):
    del attack, norm
    self.passes += 1
    return {"correct": eps < self.threshold[indices]}


def test_bisection_brackets_each_examples_smallest_fooling_eps():
  """After k halvings the bracket (robust_eps, fool_eps] holds the example's threshold and is 2^-k of its grid
  interval; wrong-without-attack and never-fooled examples keep their grid values; examples sharing a middle
  share a pass."""
  grid = (0.0, 0.1, 0.2, 0.4)
  threshold = np.array([0.0, 0.03, 0.07, 0.13, 0.3, 0.31, 0.5, 0.1])
  runner = _ThresholdRunner(threshold)
  correct, _ = sweep(runner, "fgsm", "inf", grid, _budget(), classes=10, step_size=_step_size)
  runner.passes = 0
  robust, fool = sequences.bisect(runner, "fgsm", "inf", grid, correct, _budget(), classes=10,
                                  step_size=_step_size, steps=3)
  inside = (threshold > 0) & (threshold <= 0.4)
  assert np.all(robust[inside] < threshold[inside]) and np.all(threshold[inside] <= fool[inside])
  np.testing.assert_allclose((fool - robust)[[1, 2, 3, 7]], 0.1 / 8)
  np.testing.assert_allclose((fool - robust)[[4, 5]], 0.2 / 8)
  assert robust[0] == 0.0 and fool[0] == 0.0  # wrong without attack
  assert robust[6] == 0.4 and np.isinf(fool[6])  # never fooled on the grid
  assert fool[7] == pytest.approx(0.1)  # fooled exactly at its threshold: the bracket closes on it
  assert runner.passes == 3 + 5 + 6 < 3 * inside.sum()  # shared middles: not 3 passes per bracketed example
