"""Which trials the claims may rest on: every results.jsonl line is exactly one of usable, doubtful, collapsed,
diverged or failed (with a reason naming its numbers), and a usable or doubtful trial is trained or not.

Why: a sweep that drops diverged runs, fits a network stuck at chance as if it had learnt, or compares a
network trained to convergence with one stopped while its loss still falls, answers another question than
the claims ask. The rules are stated by `class_rules` and `trained_rule` from the constants below.
"""

import math

from tfrobust.errors import UsageError

USABLE, DOUBTFUL, COLLAPSED, DIVERGED, FAILED = "usable", "doubtful", "collapsed", "diverged", "failed"
KINDS = (USABLE, DOUBTFUL, COLLAPSED, DIVERGED, FAILED)
IN_FITS = (USABLE, DOUBTFUL)  # the "all" control; doubtful trials are fitted and listed

COLLAPSE_MARGIN = 0.05  # clean accuracy ≤ chance + 0.05 (chance = 1/num_classes): collapsed
ZERO_GRAD_COLLAPSE = 0.5  # zero_input_gradients failed with ≥ 50% all-zero input gradients: collapsed
TRAINED_LOSS_FACTOR = 3.0  # final training loss ≤ 3 × the lowest of its regime and momentum
# nats: losses at or below it count as fully fit. Cross-entropy on data the network separates keeps falling
# geometrically (0.005 → 0.003 in two epochs); that tail is not under-training.
TRAINED_LOSS_FLOOR = 0.01
PLATEAU_FRACTION = 0.10  # the last 10% of the epochs (at least the last 2 history records) ...
PLATEAU_MAX_DROP = 0.10  # ... may lower the per-epoch training loss by at most 10%

# (classes, test examples) of datasets the results do not describe themselves.
KNOWN_DATASETS = {"digits": (10, 360), "mnist5k": (10, 1000), "mnist": (10, 10000), "fashion_mnist": (10, 10000),
                  "kmnist": (10, 10000), "cifar10": (10, 10000), "cifar100": (100, 10000),
                  "svhn_cropped": (10, 26032)}
FALLBACK_CLASSES = 10
FALLBACK_TEST_EXAMPLES = 1000


def _int_field(trial, key):
  for where in (trial.metrics or {}, trial.hparams):
    v = where.get(key)
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
      return v
  return None


def _recorded_or_known(trial, key, column, known_text):
  """(value, source) from the results' own `key`, else column `column` of KNOWN_DATASETS for the trial's dataset
  (known_text names it); (None, dataset name) when neither says."""
  n = _int_field(trial, key)
  if n:
    return n, "the results"
  ds = str(trial.hparams.get("dataset", ""))
  if ds in KNOWN_DATASETS:
    return KNOWN_DATASETS[ds][column], known_text.format(ds=ds, n=KNOWN_DATASETS[ds][column])
  return None, ds or "?"


def num_classes(trial):
  """(classes, source): metrics/hparams num_classes, else the known dataset, else a stated fallback."""
  n, source = _recorded_or_known(trial, "num_classes", 0, "{ds} has {n} classes")
  if n:
    return n, source
  return FALLBACK_CLASSES, f"assumed {FALLBACK_CLASSES} (dataset {source} not known to the report)"


def test_examples(trial):
  """(n, source): how many test examples the clean accuracy was measured on (for the bootstrap)."""
  n, source = _recorded_or_known(trial, "test_examples", 1, "{ds}'s test split has {n}")
  if n:
    return n, source
  rob = [r[4] for r in trial.robustness if r[4]]
  if rob:  # the robustness section runs on a prefix of the test set: a lower bound, so a wider interval
    return max(rob), f"assumed {max(rob)}, the robustness section's examples (dataset {source} not known)"
  return FALLBACK_TEST_EXAMPLES, f"assumed {FALLBACK_TEST_EXAMPLES} (dataset {source} not known)"


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
  classes, _ = num_classes(trial)
  chance = 1.0 / classes
  if trial.clean is None or trial.clean <= chance + COLLAPSE_MARGIN:
    clean = "none" if trial.clean is None else f"{trial.clean:.3f}"
    return COLLAPSED, f"collapsed: clean accuracy {clean} ≤ chance {chance:.3f} + {COLLAPSE_MARGIN:g}"
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
  return ["failed: status other than ok (an exception; no numbers).",
          "diverged: the training loss became non-finite (`diverged: true`).",
          f"collapsed: clean test accuracy ≤ chance + {COLLAPSE_MARGIN:g} (chance = 1/number of classes), or the "
          f"robustness check zero_input_gradients failed with ≥ {100 * ZERO_GRAD_COLLAPSE:.0f}% of inputs having an "
          "all-zero input gradient.",
          "doubtful: any other failed robustness check, or a Hessian estimate that did not converge "
          "(`hessian.not_converged`); doubtful trials stay in the fits and are listed.",
          "usable: everything else. Collapsed, diverged and failed trials are left out of the main fits and "
          "listed; the worst_case control scores collapsed and diverged trials at their worst (clean accuracy "
          "at chance, adversarial accuracy 0)."]


def _plateau_window(n_records):
  return max(1, math.ceil(PLATEAU_FRACTION * n_records))


def trained_rule():
  return (f"A usable or doubtful trial is trained when (1) its final training loss is at most "
          f"{TRAINED_LOSS_FACTOR:g} × max(lowest final training loss among usable and doubtful trials of the same "
          f"regime and momentum, {TRAINED_LOSS_FLOOR:g}) and (2) its per-epoch training loss fell by at most "
          f"{100 * PLATEAU_MAX_DROP:.0f}% over the last {100 * PLATEAU_FRACTION:.0f}% of the epochs (at least "
          f"the last 2 history records), or ended at or below {TRAINED_LOSS_FLOOR:g} nats (fully fit: "
          "cross-entropy keeps falling geometrically on separated data). A trial without a training loss or with "
          "fewer than 2 history records cannot be shown trained and counts as not trained.")


def trained(trials, kinds):
  """{trial_id: (is_trained, reason)} for trials whose kind is usable or doubtful (see trained_rule);
  is_trained is None when the results lack what the rule needs."""
  fit = [t for t in trials if kinds[t.trial_id][0] in IN_FITS]
  best = {}
  for t in fit:
    if t.train_loss is not None:
      k = (t.regime, t.momentum)
      best[k] = min(best.get(k, math.inf), t.train_loss)
  out = {}
  for t in fit:
    if t.train_loss is None:
      out[t.trial_id] = (None, "no final training loss recorded")
      continue
    ref = max(best[(t.regime, t.momentum)], TRAINED_LOSS_FLOOR)
    if t.train_loss > TRAINED_LOSS_FACTOR * ref:
      out[t.trial_id] = (False, f"final training loss {t.train_loss:.3g} > {TRAINED_LOSS_FACTOR:g} × {ref:.3g} "
                                f"(lowest of {t.regime}, μ = {t.momentum:g})")
      continue
    hist = t.loss_history
    if len(hist) < 2:
      out[t.trial_id] = (None, f"{len(hist)} history record(s): the plateau cannot be checked")
      continue
    w = _plateau_window(len(hist))
    start, end = hist[-1 - w], hist[-1]
    drop = (start - end) / start if start > 0 else 0.0
    if drop > PLATEAU_MAX_DROP and end > TRAINED_LOSS_FLOOR:
      out[t.trial_id] = (False, f"training loss still falling: {start:.3g} → {end:.3g} ({100 * drop:.0f}% "
                                f"> {100 * PLATEAU_MAX_DROP:.0f}%) over the last {w} epoch(s)")
      continue
    tail = f"; ended at {end:.3g} ≤ {TRAINED_LOSS_FLOOR:g}" if drop > PLATEAU_MAX_DROP else ""
    out[t.trial_id] = (True, f"final training loss {t.train_loss:.3g} ≤ {TRAINED_LOSS_FACTOR:g} × {ref:.3g}; "
                             f"fell {100 * drop:.0f}% over the last {w} epoch(s){tail}")
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
