"""Which trials the claims may rest on: every results.jsonl line is exactly one of usable, doubtful, collapsed,
diverged or failed (with a reason naming its numbers), and a usable or doubtful trial is trained or not.

Why: a sweep that drops diverged runs, fits a network stuck at chance as if it had learnt, or compares a
network trained to convergence with one stopped while its loss still falls, answers another question than
the claims ask. "Trained" is one absolute rule fixed before the data are seen (final training loss ≤ a threshold
in nats): a relative rule ("3× the best of its group") selects on an outcome that itself depends on B, and
calls a whole group stuck at 1.2 nats trained. Under the loss budget the threshold is the budget's own target:
every point trained towards it, so trained means reached it (before the cap). The rules are stated by
`class_rules` and `trained_rule` from the constants below.
"""

import math

from tfrobust.errors import UsageError

USABLE, DOUBTFUL, COLLAPSED, DIVERGED, FAILED = "usable", "doubtful", "collapsed", "diverged", "failed"
KINDS = (USABLE, DOUBTFUL, COLLAPSED, DIVERGED, FAILED)
IN_FITS = (USABLE, DOUBTFUL)  # the "all" control; doubtful trials are fitted and listed

COLLAPSE_MARGIN = 0.05  # clean accuracy ≤ chance + 0.05 (chance = 1/num_classes): collapsed
ZERO_GRAD_COLLAPSE = 0.5  # zero_input_gradients failed with ≥ 50% all-zero input gradients: collapsed
# nats. Cross-entropy 0.1 is a mean probability of about 90% on the right class; every network of the committed
# studies that fits its training set ends below it, and one stuck near chance (2.3 nats) or half-way (1.2) does not.
TRAINED_LOSS = 0.1
FALLBACK_CLASSES = 10  # results written before runs recorded data.num_classes
FALLBACK_TEST_EXAMPLES = 1000  # ... and data.test_examples, when the robustness section does not say either


def check_trained_loss(value, name="trained_loss"):
  """A trained-loss threshold must be a finite number > 0 (0 would call no network trained)."""
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
    raise UsageError(f"{name}={value!r}: must be a finite number > 0 (nats)")
  return float(value)


def num_classes(trial):
  """(classes, source): the run's recorded data.num_classes, else one stated fallback."""
  if trial.num_classes:
    return trial.num_classes, "recorded by the runs"
  return FALLBACK_CLASSES, f"assumed {FALLBACK_CLASSES} (results written before runs recorded data.num_classes)"


def test_examples(trial):
  """(n, source): how many test examples the clean accuracy was measured on (for the binomial fallback)."""
  if trial.test_examples:
    return trial.test_examples, "recorded by the runs"
  rob = [r[4] for r in trial.robustness if r[4]]
  if rob:  # the robustness section runs on a prefix of the test set: a lower bound, so a wider interval
    return max(rob), (f"assumed {max(rob)}, the robustness section's examples (results written before runs "
                      "recorded data.test_examples)")
  return FALLBACK_TEST_EXAMPLES, f"assumed {FALLBACK_TEST_EXAMPLES} (no record of the test-set size)"


def classify(trial):
  """(kind, reason) of one trial; reason names the numbers that decided it ("" for usable)."""
  if trial.status != "ok":
    last = (trial.error.strip().splitlines() or ["no error recorded"])[-1][:200]
    return FAILED, f"failed (status {trial.status}): {last}"
  if trial.diverged:
    d = trial.divergence or {}
    at = f" at step {d['step']}" if "step" in d else ""
    lr = f", η = {trial.lr_used:.4g}" if trial.lr_used is not None else ""
    return DIVERGED, f"diverged: non-finite training loss{at}{lr}"
  if trial.clean is None:  # a record without its main number is malformed, not evidence of a collapse
    return FAILED, "failed: finished without a finite clean test accuracy (malformed record)"
  classes, _ = num_classes(trial)
  chance = 1.0 / classes
  if trial.clean <= chance + COLLAPSE_MARGIN:
    return COLLAPSED, f"collapsed: clean accuracy {trial.clean:.3f} ≤ chance {chance:.3f} + {COLLAPSE_MARGIN:g}"
  checks = trial.checks or {}
  zero = checks.get("zero_input_gradients") or {}
  frac = zero.get("fraction")
  if zero.get("passed") is False and isinstance(frac, (int, float)) and frac >= ZERO_GRAD_COLLAPSE:
    return COLLAPSED, (f"collapsed: {100 * frac:.0f}% of test inputs have an all-zero input gradient "
                       f"(≥ {100 * ZERO_GRAD_COLLAPSE:.0f}%)")
  doubts = []
  for name, check in sorted(checks.items()):
    if isinstance(check, dict) and check.get("passed") is False:
      doubts.append(f"robustness check {name} failed ({str(check.get('detail', '')).strip()[:160]})")
  if trial.not_converged:
    doubts.append(f"Hessian not converged: {', '.join(trial.not_converged)}")
  if doubts:
    return DOUBTFUL, "doubtful: " + "; ".join(doubts)
  return USABLE, ""


def class_rules():
  """The classification rule in words, from the constants `classify` uses."""
  return ["failed: status other than ok (an exception; no numbers), or finished without a finite clean test "
          "accuracy (a malformed record, not a collapse).",
          "diverged: the training loss became non-finite (`diverged: true`).",
          f"collapsed: clean test accuracy ≤ chance + {COLLAPSE_MARGIN:g} (chance = 1/number of classes), or the "
          f"robustness check zero_input_gradients failed with ≥ {100 * ZERO_GRAD_COLLAPSE:.0f}% of inputs having an "
          "all-zero input gradient.",
          "doubtful: any other failed robustness check, or a Hessian estimate that did not converge "
          "(`hessian.not_converged`); doubtful trials are in the all control and left out of the usable one.",
          "usable: everything else."]


def target_of(trial):
  """The loss budget's target of a trial (hparams.target_train_loss, nats), or None under another budget."""
  value = trial.hparams.get("target_train_loss") if trial.budget == "loss" else None
  return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def trained_rule(threshold=TRAINED_LOSS, budget="epochs"):
  if budget == "loss":
    return ("Under the loss budget a usable or doubtful trial is trained when it reached its target: its final "
            "training loss (cross-entropy over the whole training set, `metrics[\"train/loss\"]`, the measure the run "
            "stopped on) is at most `target_train_loss`; a trial that stopped at the cap without it is not trained. "
            "The target is the threshold, fixed before training; `--trained_loss` is not used.")
  return (f"A usable or doubtful trial is trained when its final training loss (cross-entropy over the whole "
          f"training set, `metrics[\"train/loss\"]`) is at most {threshold:g} nats: one absolute threshold for every "
          "point, fixed before the results are read (`--trained_loss`). A trial without a final training loss "
          "cannot be shown trained and counts as not trained.")


def trained(trials, kinds, threshold=TRAINED_LOSS):
  """{trial_id: (is_trained, reason)} for trials whose kind is usable or doubtful (see trained_rule); is_trained
  is None when the results lack the training loss. The reason says by how much the rule failed."""
  threshold = check_trained_loss(threshold)
  out = {}
  for t in trials:
    if kinds[t.trial_id][0] not in IN_FITS:
      continue
    target = target_of(t)
    if target is not None and t.train_loss is not None:
      reached = t.train_loss <= target
      used = f"after {len(t.loss_history)} epoch(s)" if reached else f"within the cap of {t.epochs} epochs"
      out[t.trial_id] = (reached, f"{'reached' if reached else 'did not reach'} the target {target:g} nats {used} "
                                  f"(final training loss {t.train_loss:.3g})")
    elif t.train_loss is None:
      out[t.trial_id] = (None, "no final training loss recorded")
    elif t.train_loss > threshold:
      out[t.trial_id] = (False, f"final training loss {t.train_loss:.3g} > {threshold:g} nats "
                                f"(by {t.train_loss - threshold:.3g}, {t.train_loss / threshold:.3g}×)")
    else:
      out[t.trial_id] = (True, f"final training loss {t.train_loss:.3g} ≤ {threshold:g} nats")
  return out


def budget_of(trials):
  """("epochs" | "steps", a sentence stating it); UsageError when the results mix budgets."""
  budgets = {}
  for t in trials:
    budgets.setdefault(t.budget, []).append(t)
  if len(budgets) > 1:
    counts = ", ".join(f"{b}: {len(ts)} line(s)" for b, ts in sorted(budgets.items()))
    raise UsageError(f"results.jsonl mixes training budgets ({counts}); a comparison across B needs one budget "
                     "per sweep directory")
  (budget, ts), = budgets.items()
  if budget == "loss":
    return budget, _loss_budget_text(ts)
  if budget == "steps":
    steps = sorted({t.max_steps for t in ts})
    if len(steps) == 1:
      return budget, (f"Budget: **steps**. Every point was trained for the same number of SGD updates, "
                      f"**{steps[0]}** (max_steps), so a larger B sees more epochs of data.")
    return budget, (f"Budget: **steps**. **Warning: max_steps differs between trials "
                    f"({', '.join(map(str, steps))}); the comparison across batch sizes is not fair.**")
  epochs = sorted({t.epochs for t in ts if t.epochs is not None}, key=str)
  if len(epochs) == 1:
    bs = sorted({t.batch_size for t in ts})
    fewer = (f": B = {bs[-1]} makes {bs[-1] / bs[0]:g}× fewer than B = {bs[0]}" if len(bs) > 1 else "")
    return budget, (f"Budget: **epochs**. Every point was trained for the same number of epochs, **{epochs[0]}**, "
                    f"so a point at batch size B makes ∝ 1/B SGD updates{fewer}. "
                    "Large-B points may be under-trained; the trained control below checks that.")
  return budget, (f"Budget: **epochs**. **Warning: the epochs differ between trials "
                  f"({', '.join(map(str, epochs)) or 'unknown'}); the comparison across batch sizes is not fair.**")


def _loss_budget_text(trials):
  targets = sorted({target_of(t) for t in trials}, key=str)
  caps = sorted({t.epochs for t in trials if t.epochs is not None}, key=str)
  if len(targets) != 1 or len(caps) != 1 or targets[0] is None:
    return (f"Budget: **loss**. **Warning: the target or the cap differs between trials (targets "
            f"{', '.join(map(str, targets))}; caps {', '.join(map(str, caps))} epochs); the trials are not "
            "compared at one training loss.**")
  done = [t for t in trials if t.status == "ok" and not t.diverged and t.train_loss is not None]
  reached = [t for t in done if t.train_loss <= targets[0]]
  return (f"Budget: **loss**. Every point trained until its cross-entropy over the whole training set, measured at "
          f"each epoch's end, was at most **{targets[0]:g} nats**, for at most **{caps[0]} epochs**, so the networks "
          f"are compared at the same training loss, not after the same data or updates. {len(reached)} of "
          f"{len(done)} finished trials reached the target; the others stopped at the cap and are not trained "
          "(counted per cell in the setting's table).")
