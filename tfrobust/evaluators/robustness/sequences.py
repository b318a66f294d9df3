"""Each attack as a sequence of passes over the examples, and its sweep along the ε grid with the early stop.

The early stop: ε ascending; at each ε only the examples every smaller ε left robust are attacked, and each pass
(a restart, an APGD target class, the next attack of the autoattack sequence) only those no earlier pass at that ε
fooled. The runner packs what is left into full batches, so the work shrinks with it (masking the fooled examples
inside a batch would save nothing).

What it computes, exactly. Every pass is a pure function of (example, ε, pass): its random start is drawn from
stateless per-example seeds (seed, example index, pass number) and the model sees each example on its own, so
neither the batch an example lands in nor the other examples change its outcome. So, per example:
- within one ε, "fooled by some pass" is the same set whether every pass runs on every example (today's in-graph
  restarts, `attacks.attack_batch(restarts=R)`) or each pass runs only on what the earlier ones left: identical;
- across ε, an example counts as fooled at ε_i when some grid ε_j ≤ ε_i fooled it. An adversarial example found at
  ε_j lies in the ε_i-ball too, so this is a valid attack at ε_i. correct[i] is therefore the running AND over
  j ≤ i of the exhaustive sweep's correct[j]: identical to it wherever the exhaustive outcome is monotone in ε,
  and fooled where it is not (PGD fools some examples at ε_j and misses them at a larger ε_i, with its longer
  steps from the same start direction). So robust accuracy is never higher than the exhaustive sweep's, example
  by example (tests/evaluators/robustness/test_sequences.py checks both equalities on PGD with fixed seeds).
The per-example curve is monotone: an example fooled at ε is fooled at every larger ε of the grid, and its
smallest fooling ε (records.run.min_fool_eps) is the first grid ε at which some pass fooled it.

At ε = 0 the ball is a point and every attack returns x itself, so one pass with one iteration stands for the
whole sequence there: it still runs the compiled path (eps0_equals_clean compares it with a plain forward pass).

Units: ε on the [0, 1] pixel scale, in the attack's norm; steps are gradient evaluations, queries model
evaluations, per example.
"""

import dataclasses

import numpy as np

# APGD-T's target classes: the 9 ranked highest after the true class by the clean logits (AutoAttack's standard),
# at most classes − 1.
APGD_TARGETS = 9
TARGETED_MIN_CLASSES = 4  # The targeted DLR needs 4 classes; with 3 the sequence runs the untargeted DLR instead.
DLR_MIN_CLASSES = 3  # The DLR loss needs 3 classes; with 2 the sequence is APGD-CE and Square.
# A pass at ε = 0 (see the module docstring): one iteration, one query.
ZERO_EPS_PASS = {"steps": 1, "queries": 1, "restarts": 1}


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
  elif attack == "pgd":
    out = [{"attack": "pgd", "steps": budget.pgd_steps, "step_size": step_size(eps, budget.pgd_steps), "run": r}
           for r in range(budget.pgd_restarts)]
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


def sweep(runner, attack, norm, grid, budget, *, classes, step_size, on_batch=None):
  """`attack` along the ascending ε `grid` with the early stop (module docstring).

  Returns (correct [len(grid), n] bool: example n robust at grid[i] and every smaller grid ε, attacked [len(grid)]:
  the example-passes run at each ε, the work the early stop left).
  """
  if any(b <= a for a, b in zip(grid, grid[1:])):
    raise ValueError(f"the ε grid {list(grid)} must be strictly ascending")
  alive = np.arange(runner.num_examples)
  correct = np.zeros((len(grid), runner.num_examples), bool)
  attacked = np.zeros(len(grid), np.int64)
  for i, eps in enumerate(grid):
    for kwargs in passes(attack, eps, budget, classes=classes, step_size=step_size):
      if not len(alive):
        break
      attacked[i] += len(alive)
      kwargs = dict(kwargs)
      alive = alive[runner.run(kwargs.pop("attack"), norm, indices=alive, eps=eps, on_batch=on_batch,
                               **kwargs)["correct"]]
    correct[i, alive] = True
  return correct, attacked
