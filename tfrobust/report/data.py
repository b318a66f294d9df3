"""What the report reads of a sweep, reduced for the claims: every Trial (tfrobust.records parses results.jsonl
and owns the headline choice) as an Observation of verdicts.py, with its class and trained flag from quality.py,
and the grid the results should cover.

No TensorFlow: the report runs anywhere.
"""

from tfrobust.records.trial import adv_accuracy, adv_examples
from tfrobust.report import quality, verdicts

REGIME_ORDER = ("fixed_lr", "constant_ratio", "sqrt")


def to_observations(trials, choice):
  """Every trial as a verdicts.Observation: its class, trained flag, chance level and the test examples behind its
  accuracies (the adversarial ones: the robustness entry's examples, else the most common among trials)."""
  kinds = {t.trial_id: quality.classify(t) for t in trials}
  trained = quality.trained(trials, kinds)
  ns = [adv_examples(t, choice) for t in trials]
  ns = [n for n in ns if n]
  typical = max(set(ns), key=ns.count) if ns else None
  points = []
  for t in trials:
    kind, reason = kinds[t.trial_id]
    is_trained, why = trained.get(t.trial_id, (False, reason))
    n_clean = quality.test_examples(t)[0]
    points.append(verdicts.Observation(
        t.regime, t.batch_size, t.momentum, t.seed, t.clean, adv_accuracy(t, choice), t.top_eig,
        trial_id=t.trial_id, kind=kind, reason=reason, trained=is_trained, trained_reason=why, n_clean=n_clean,
        n_adv=adv_examples(t, choice) or typical or n_clean, chance=1.0 / quality.num_classes(t)[0],
        lr_used=t.lr_used, train_loss=t.train_loss))
  return points


def data_notes(trials):
  """Where the chance level and the test-set size behind the bootstrap come from, once per distinct source."""
  classes = sorted({quality.num_classes(t)[1] for t in trials if t.status == "ok"})
  tests = sorted({quality.test_examples(t)[1] for t in trials if t.status == "ok"})
  return ([f"Chance level = 1/classes: {', '.join(classes)}."] if classes else []) + \
      ([f"Clean accuracy's test examples (for the bootstrap): {', '.join(tests)}."] if tests else [])


def regimes_of(trials, sweep):
  named = list((sweep or {}).get("regimes") or [])
  seen = {t.regime for t in trials}
  order = [r for r in named if r in seen] + [r for r in REGIME_ORDER if r in seen and r not in named]
  return order + sorted(seen - set(order))


def missing_points(trials, sweep):
  """(missing keys, extra keys, where the grid came from); keys are (regime, B, μ, seed)."""
  have = {t.key for t in trials}
  grid = sweep or {}
  if all(grid.get(k) for k in ("regimes", "batch_sizes", "momenta", "seeds")):
    src, axes = "sweep.json", [grid["regimes"], grid["batch_sizes"], grid["momenta"], grid["seeds"]]
  else:
    src = "inferred from the results (no usable grid in sweep.json): every regime × B × μ × seed seen"
    axes = [sorted({k[i] for k in have}) for i in range(4)]
  want = {(str(r), int(b), round(float(m), 6), int(s))
          for r in axes[0] for b in axes[1] for m in axes[2] for s in axes[3]}
  return sorted(want - have), sorted(have - want), src
