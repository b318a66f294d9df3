"""Each attack as a sequence of passes over the examples, and its sweep along the ε grid with the early stop.

The early stop (order "descending", the default): ε = 0 first (the clean check), then the largest ε down. At each
ε only the examples some pass fooled at every larger ε are attacked; an example no pass fools at ε counts robust
there and at every smaller ε of the grid, and is not attacked again. Each pass (the PGD restarts, side by side; an
APGD restart or target class; the next attack of the autoattack sequence) attacks only those no earlier pass at
that ε fooled, and a pass itself drops an example at the first iterate that fools it (attacks.pgd_until_fooled;
APGD and Square stop a batch once all of it is fooled). The runner packs what is left into full batches, so the
work shrinks with it. Why this order: an example costs the attack's whole budget only where the attack fails on
it, and here that happens once, at the largest ε it resists; ascending ε (order "ascending", the issue's first
design) pays that budget again at every ε below it. bench/attack_throughput.py measures both (README).

What it computes, exactly. Every pass is a pure function of (example, ε, pass): its random start is drawn from
stateless per-example seeds (seed, example index, pass number) and the model sees each example on its own, so
neither the batch an example lands in nor the other examples change its outcome. Let exhaustive[i] be each
example's outcome with every pass run on every example at grid[i] (`runner.run` on all). Then per example:
- descending: correct[0] = exhaustive[0], and for i ≥ 1 correct[i] = exhaustive[0] AND (OR over j ≥ i, j ≥ 1 of
  exhaustive[j]): identical to the exhaustive sweep wherever its outcome is monotone in ε, and robust where the
  attack failed at a larger ε but fools the example at a smaller one (PGD can: its steps scale with ε). The bench
  counts those examples ("non_monotone": 0 on both benchmark networks);
- ascending: correct[i] = AND over j ≤ i of exhaustive[j] (a point found at ε_j lies in the ε_i-ball too): never
  a higher robust accuracy than the exhaustive sweep, lower where it is not monotone.
tests/evaluators/robustness/test_sequences.py checks both identities on PGD with fixed seeds. Either way the
per-example curve is monotone: an example fooled at ε is fooled at every larger ε of the grid, and its smallest
fooling ε (records.run.min_fool_eps) is the smallest grid ε at which some pass fooled it.

At ε = 0 the ball is a point and every attack returns x itself, so one pass with one iteration stands for the
whole sequence there: it still runs the compiled path (eps0_equals_clean compares it with a plain forward pass).

Units: ε on the [0, 1] pixel scale, in the attack's norm; steps are gradient evaluations, queries model
evaluations, per example.
"""

import dataclasses

import numpy as np

from tfrobust.records.run import min_fool_eps

# APGD-T's target classes: the 9 ranked highest after the true class by the clean logits (AutoAttack's standard),
# at most classes − 1.
APGD_TARGETS = 9
TARGETED_MIN_CLASSES = 4  # The targeted DLR needs 4 classes; with 3 the sequence runs the untargeted DLR instead.
DLR_MIN_CLASSES = 3  # The DLR loss needs 3 classes; with 2 the sequence is APGD-CE and Square.
# A pass at ε = 0 (see the module docstring): one iteration, one query.
ZERO_EPS_PASS = {"steps": 1, "queries": 1, "restarts": 1}
# The order ε is swept in (module docstring); the evaluator uses the first.
ORDERS = ("descending", "ascending")


@dataclasses.dataclass(frozen=True)
class Budget:
  """The iterations of one curve's attacks: the config's, or more of them for the deep check."""
  pgd_steps: int
  pgd_restarts: int
  apgd_steps: int
  apgd_restarts: int
  square_queries: int

  @classmethod
  def of(cls, config):
    return cls(config.pgd_steps, config.pgd_restarts, config.apgd_steps, config.apgd_restarts,
               config.square_queries)

  def reported(self, attack):
    """(steps, restarts) as result.json's rows show them: PGD's or APGD's iterations and starts, Square's
    queries, 1 and 1 for FGSM and the noise baseline."""
    if attack == "pgd":
      return self.pgd_steps, self.pgd_restarts
    if attack in ("apgd_ce", "apgd_dlr", "autoattack"):
      return self.apgd_steps, self.apgd_restarts
    if attack == "square":
      return self.square_queries, 1
    return 1, 1


def passes(attack, eps, budget, *, classes, step_size):
  """The runner.run arguments (but ε, norm and the examples) of each pass of `attack` at ε, in order.

  attack: a config.ATTACKS name or "noise". classes: the model's number of classes (which DLR variants apply).
  step_size(eps, steps): PGD's step on the [0, 1] scale (RobustnessConfig.step_size).
  """
  if attack in ("fgsm", "noise"):
    out = [{"attack": attack}]
  elif attack == "pgd":  # its restarts side by side in one pass (attacks.pgd_until_fooled)
    out = [{"attack": "pgd", "steps": budget.pgd_steps, "step_size": step_size(eps, budget.pgd_steps),
            "restarts": budget.pgd_restarts}]
  elif attack in ("apgd_ce", "apgd_dlr"):
    out = _apgd(attack[len("apgd_"):], budget)
  elif attack == "square":
    out = [{"attack": "square", "queries": budget.square_queries}]
  elif attack == "autoattack":
    out = _apgd("ce", budget)
    if classes >= TARGETED_MIN_CLASSES:
      # Run k = t·R + r: apgd.apgd_targeted's numbering, so target t, restart r draws the same start as there.
      out += [{"attack": "apgd_t", "steps": budget.apgd_steps, "target": t, "run": t * budget.apgd_restarts + r}
              for t in range(min(APGD_TARGETS, classes - 1)) for r in range(budget.apgd_restarts)]
    elif classes >= DLR_MIN_CLASSES:
      out += _apgd("dlr", budget)
    out.append({"attack": "square", "queries": budget.square_queries})
  else:
    raise ValueError(f"attack={attack!r}: no such attack")
  if eps == 0:
    return [dict(out[0], **ZERO_EPS_PASS)]
  return out


def _apgd(loss, budget):
  return [{"attack": "apgd", "loss": loss, "steps": budget.apgd_steps, "run": r} for r in range(budget.apgd_restarts)]


def sweep(runner, attack, norm, grid, budget, *, classes, step_size, on_batch=None, order="descending"):
  """`attack` along the ascending ε `grid` with the early stop (module docstring), in `order`.

  Returns (correct [len(grid), n] bool: example n counted robust at grid[i], attacked [len(grid)]: the
  example-passes run at each ε, the work the early stop left).
  """
  if any(b <= a for a, b in zip(grid, grid[1:])):
    raise ValueError(f"the ε grid {list(grid)} must be strictly ascending")
  if order not in ORDERS:
    raise ValueError(f"order={order!r}: choose one of {', '.join(ORDERS)}")
  correct = np.zeros((len(grid), runner.num_examples), bool)
  attacked = np.zeros(len(grid), np.int64)

  def survivors(i, alive):
    alive, attacked[i] = _survivors(runner, attack, norm, grid[i], alive, budget, classes=classes,
                                    step_size=step_size, on_batch=on_batch)
    return alive

  if order == "ascending":
    alive = np.arange(runner.num_examples)
    for i in range(len(grid)):
      alive = survivors(i, alive)
      correct[i, alive] = True
    return correct, attacked
  # Descending: an example the attack fails on at grid[i] counts robust there and at every smaller ε, and is not
  # attacked again; an example it fools goes on to the next smaller ε. ε = 0 (the clean check) runs on all.
  pending, lowest = np.arange(runner.num_examples), 0
  if grid[0] == 0:
    pending = survivors(0, pending)
    correct[0, pending] = True
    lowest = 1
  for i in range(len(grid) - 1, lowest - 1, -1):
    if not len(pending):
      break
    robust = survivors(i, pending)
    correct[lowest:i + 1, robust] = True
    pending = np.setdiff1d(pending, robust, assume_unique=True)
  return correct, attacked


def bisect(runner, attack, norm, grid, correct, budget, *, classes, step_size, steps, on_batch=None):
  """Each example's smallest fooling ε refined between the grid points around it by `steps` halvings.

  correct: the sweep's [len(grid), n] outcomes. An example fooled first at grid[i] (i ≥ 1) has the bracket
  (grid[i − 1], grid[i]]; each halving attacks it (every pass of `attack`, as at a grid ε) at the bracket's
  middle and keeps the half where the outcome changes. The examples that share a middle share a pass, so a
  halving costs one pass per distinct middle (at most len(grid) · 2^k of them at halving k).
  Returns (robust_eps, fool_eps), float64 [n]: the largest ε found not to fool the example (0 for one wrong
  without attack, the largest grid ε for one never fooled) and the smallest found to fool it (inf: never).
  """
  grid = np.asarray(grid, np.float64)
  fool_eps = min_fool_eps(grid, correct)
  first = np.searchsorted(grid, fool_eps)  # len(grid) where never fooled
  robust_eps = np.where(first == 0, 0.0, grid[np.maximum(first - 1, 0)])
  bracketed = np.flatnonzero((first > 0) & (first < len(grid)))
  for _ in range(steps):
    middle = (robust_eps[bracketed] + fool_eps[bracketed]) / 2
    for eps in np.unique(middle):
      group = bracketed[middle == eps]
      alive, _ = _survivors(runner, attack, norm, float(eps), group, budget, classes=classes, step_size=step_size,
                            on_batch=on_batch)
      robust = np.isin(group, alive)
      robust_eps[group[robust]] = eps
      fool_eps[group[~robust]] = eps
  return robust_eps, fool_eps


def _survivors(runner, attack, norm, eps, alive, budget, *, classes, step_size, on_batch):
  """(the examples of `alive` no pass of `attack` at ε fools, the example-passes run): each pass only on what the
  earlier ones left."""
  attacked = 0
  for kwargs in passes(attack, eps, budget, classes=classes, step_size=step_size):
    if not len(alive):
      break
    attacked += len(alive)
    kwargs = dict(kwargs)
    alive = alive[runner.run(kwargs.pop("attack"), norm, indices=alive, eps=eps, on_batch=on_batch,
                             **kwargs)["correct"]]
  return alive, attacked
