"""What the report reads of a sweep, reduced for the claims: every Trial (tfrobust.records parses results.jsonl
and owns the headline choice) as an Observation of verdicts.py, with its class and trained flag from quality.py,
its per-example outcomes (examples.npz) where the run wrote them, and the grid the results should cover.

No TensorFlow: the report runs anywhere.
"""

import collections

import numpy as np

from tfrobust.config import REGIMES
from tfrobust.records import names as record_names
from tfrobust.records import run as run_records
from tfrobust.records.trial import adv_accuracy, adv_examples, choose_adv, same_eps
from tfrobust.records import sweep as sweep_records
from tfrobust.report import epsfree, quality, verdicts

REGIME_ORDER = tuple(REGIMES)  # the order regimes are shown in when sweep.json names none
INPUT_EIG_KEYS = ("hessian", "input_top_eigenvalue", "mean")  # --hessian_input's top eigenvalue in a results line
# The mean input-gradient norm over the attacked test examples. The robustness probe computes each input gradient
# but records only whether it is zero; where a run records the mean norm, it is read from here.
GRAD_NORM_KEYS = ("robustness", "input_gradient", "mean_norm")


def _nested(obj, keys):
  for k in keys:
    obj = obj.get(k) if isinstance(obj, dict) else None
  return float(obj) if isinstance(obj, (int, float)) and not isinstance(obj, bool) and np.isfinite(obj) else None


def read_lines(sweep_dir):
  """{trial_id: results line} (for what a Trial does not keep: the input Hessian, the gradient norm)."""
  return sweep_records.read_lines(sweep_dir).by_id


def read_examples(sweep_dir, trials):
  """{trial_id: Examples} of the trials whose run directory holds examples.npz."""
  out = {}
  for t in trials:
    ex = run_records.read_examples(record_names.trial_dir(sweep_dir, t.trial_id))
    if ex is not None:
      out[t.trial_id] = ex
  return out


def _outcomes(examples, trials, choice):
  """{trial_id: (clean bool[N] or None, adversarial bool[n] or None)}, keeping only vectors of the length most
  trials share (a network scored on other examples cannot be paired)."""
  raw = {}
  for t in trials:
    ex = examples.get(t.trial_id)
    if ex is None:
      continue
    curve = ex.curves.get((choice.attack, choice.norm)) if choice else None
    raw[t.trial_id] = (np.asarray(ex.clean, bool), None if curve is None else curve.at(choice.eps))
  out = {k: [None, None] for k in raw}
  for i in (0, 1):
    lens = collections.Counter(len(v[i]) for v in raw.values() if v[i] is not None)
    if lens:
      keep = lens.most_common(1)[0][0]
      for k, v in raw.items():
        out[k][i] = v[i] if v[i] is not None and len(v[i]) == keep else None
  return out


def to_observations(trials, choice, examples=None, *, trained_loss=quality.TRAINED_LOSS, lines=None):
  """Every trial as a verdicts.Observation: its class, trained flag, chance level, per-example outcomes (or the
  test examples behind its accuracies, for the binomial approximation)."""
  kinds = {t.trial_id: quality.classify(t) for t in trials}
  trained = quality.trained(trials, kinds, trained_loss)
  outcomes = _outcomes(examples or {}, trials, choice)
  ns = [n for n in (adv_examples(t, choice) for t in trials) if n]
  typical = max(set(ns), key=ns.count) if ns else None
  points = []
  for t in trials:
    kind, reason = kinds[t.trial_id]
    is_trained, why = trained.get(t.trial_id, (False, reason))
    clean_ex, adv_ex = outcomes.get(t.trial_id, (None, None))
    clean, adv = t.clean, adv_accuracy(t, choice)
    if clean_ex is not None and clean is not None:
      clean = float(clean_ex.mean())
    if adv_ex is not None and adv is not None:
      adv = float(adv_ex.mean())
    curve = {}
    for a, nm, e, acc, _ in t.robustness:
      if choice and (a, nm) == (choice.attack, choice.norm):
        k = next((x for x in curve if same_eps(x, e)), e)
        curve[k] = min(acc, curve.get(k, acc))
    n_clean = quality.test_examples(t)[0]
    line = (lines or {}).get(t.trial_id) or {}
    eps_free = epsfree.summarize((examples or {}).get(t.trial_id), choice.attack, choice.norm) if choice else None
    points.append(verdicts.Observation(
        t.regime, t.batch_size, t.momentum, t.seed, clean, adv, t.top_eig, trial_id=t.trial_id, kind=kind,
        reason=reason, trained=is_trained, trained_reason=why, n_clean=n_clean,
        n_adv=adv_examples(t, choice) or typical or n_clean, chance=1.0 / quality.num_classes(t)[0],
        lr_used=t.lr_used, train_loss=t.train_loss, clean_ex=clean_ex if clean is not None else None,
        adv_ex=adv_ex if adv is not None else None, adv_curve=tuple(sorted(curve.items())),
        input_eig=_nested(line, INPUT_EIG_KEYS), grad_norm=_nested(line, GRAD_NORM_KEYS), eps_free=eps_free,
        seconds=_nested(line, ("wall_s",))))
  return points


def data_notes(trials, points=()):
  """Where the chance level and the test-set noise come from, once per distinct source."""
  ok = [t for t in trials if t.status == "ok"]
  classes = sorted({quality.num_classes(t)[1] for t in ok})
  out = [f"Chance level = 1/classes: {', '.join(classes)}."] if classes else []
  fitted = [p for p in points if p.kind in quality.IN_FITS]
  paired_n = sum(1 for p in fitted if p.clean_ex is not None)
  if fitted and paired_n == len(fitted):
    out.append(f"Every fitted trial recorded its per-example outcomes (examples.npz): the intervals take "
               f"each network's own and the shared noise of the {len(fitted[0].clean_ex)} test examples (clean) and "
               "of the attacked ones from them (paired.py).")
  elif fitted:
    tests = sorted({quality.test_examples(t)[1] for t in ok})
    out.append(f"{len(fitted) - paired_n} of {len(fitted)} fitted trials have no per-example outcomes "
               "(examples.npz; results written before runs recorded them): their test-set noise is approximated "
               "by independent Binomial(n, accuracy)/n draws, which ignores that networks scored on the same "
               f"examples are correlated. Test examples behind the clean accuracy: {', '.join(tests)}.")
  return out


def regimes_of(trials, sweep):
  named = list((sweep or {}).get("regimes") or [])
  seen = {t.regime for t in trials}
  order = [r for r in named if r in seen] + [r for r in REGIME_ORDER if r in seen and r not in named]
  return order + sorted(seen - set(order))


def missing_points(trials, sweep):
  """(missing keys, extra keys, where the grid came from); keys are (regime, B, μ, seed)."""
  have = {t.key for t in trials}
  grid = sweep or {}
  if isinstance(grid.get("seeds"), str) and grid.get("regimes") and grid.get("batch_sizes") and grid.get("momenta"):
    src = "sweep.json, with the seeds of the looks run so far (--seeds=auto)"
    axes = [grid["regimes"], grid["batch_sizes"], grid["momenta"], sorted({k[3] for k in have})]
  elif all(grid.get(k) for k in ("regimes", "batch_sizes", "momenta", "seeds")):
    src, axes = "sweep.json", [grid["regimes"], grid["batch_sizes"], grid["momenta"], grid["seeds"]]
  else:
    src = "inferred from the results (no usable grid in sweep.json): every regime × B × μ × seed seen"
    axes = [sorted({k[i] for k in have}) for i in range(4)]
  want = {(str(r), int(b), round(float(m), 6), int(s))
          for r in axes[0] for b in axes[1] for m in axes[2] for s in axes[3]}
  return sorted(want - have), sorted(have - want), src


def load_observations(sweep_dir):
  """(Observations of a finished sweep with their per-example outcomes, its sweep.json or {}): what the
  calibration's real-noise source and noise estimates read. ValueError when the sweep holds no trial."""
  trials, _ = sweep_records.load_trials(sweep_dir)
  if not trials:
    raise ValueError(f"{sweep_dir}: no finished trial")
  try:
    sweep = sweep_records.read_sweep(sweep_dir) or {}
  except ValueError:
    sweep = {}
  choice = choose_adv(trials, sweep.get("report_eps"))
  points = to_observations(trials, choice, read_examples(sweep_dir, trials), lines=read_lines(sweep_dir))
  return [p for p in points if p.kind in quality.IN_FITS], sweep, trials
