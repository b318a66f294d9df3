"""What the report reads: results.jsonl lines as Trials, sweep.json, and the choice of the adversarial
accuracy that the claims compare (attack, norm and ε). quality.py sorts the Trials into usable,
doubtful, collapsed, diverged and failed and reduces them to the Observations of verdicts.py.

No TensorFlow: the report runs anywhere.
"""

import dataclasses
import json
import math
import os
import sys
from typing import Dict, Optional, Tuple

from tfrobust.errors import UsageError
from tfrobust.report import quality, verdicts

REGIME_ORDER = ("fixed_lr", "constant_ratio", "sqrt")
ATTACK_PREFERENCE = (("pgd", "inf"), ("pgd", "2"), ("fgsm", "inf"), ("fgsm", "2"))


# ---------------------------------------------------------------------------------------------- reading

@dataclasses.dataclass(frozen=True)
class Trial:
  """One line of results.jsonl. Accuracies are fractions; ε on the [0, 1] pixel scale; losses in nats."""
  trial_id: str
  regime: str
  status: str
  batch_size: int
  momentum: float
  seed: int
  lr_used: Optional[float]  # η after the regime's scaling (hparams.scaled_lr)
  epochs: Optional[int]
  diverged: bool
  clean: Optional[float]
  robustness: Tuple[Tuple[str, str, float, float, Optional[int]], ...]  # (attack, norm, ε, accuracy, examples)
  top_eig: Optional[float]  # λ_max: the algebraically largest Hessian eigenvalue (may be ≤ 0)
  error: str
  hparams: dict
  min_eig: Optional[float] = None  # the most negative eigenvalue estimate, where measured
  train_loss: Optional[float] = None  # final training loss over the whole training set (metrics.train_loss)
  loss_history: Tuple[float, ...] = ()  # per-epoch mean training loss (history[i]["train/loss"])
  checks: Optional[dict] = None  # robustness_checks: {name: {"passed": bool, "detail": str, ...}}
  not_converged: Tuple[str, ...] = ()  # hessian.not_converged
  metrics: Optional[dict] = None
  divergence: Optional[dict] = None

  @property
  def key(self):
    return (self.regime, self.batch_size, self.momentum, self.seed)

  @property
  def usable(self):
    """Finished with a finite clean accuracy (quality.classify then sorts these into usable / doubtful /
    collapsed)."""
    return self.status == "ok" and not self.diverged and self.clean is not None and math.isfinite(self.clean)

  @property
  def budget(self):
    """"epochs" or "steps" (hparams.budget; results written before budgets existed trained for epochs)."""
    return str(self.hparams.get("budget") or "epochs")

  @property
  def max_steps(self):
    return int(self.hparams.get("max_steps") or 0)


def _norm_name(norm):
  s = str(norm).lower().replace("np.", "").lstrip("l").lstrip("_")
  return "2" if s in ("2", "2.0") else "inf" if s in ("inf", "infinity") else s


def _finite(x):
  return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def lambda_max(hessian):
  """λ_max of a hessian section: top_eigenvalues[0] (k largest in descending algebraic order, the format that
  also records min_eigenvalue); older results, whose order is not guaranteed, give the largest of them.
  Never max |λ|: a negative λ must stay negative."""
  eigs = [_finite(e) for e in (hessian.get("top_eigenvalues") or ())]
  if "min_eigenvalue" in hessian:
    return eigs[0] if eigs else None
  eigs = [e for e in eigs if e is not None]
  return max(eigs) if eigs else None


def parse_trial(obj, lineno=0):
  """A Trial from one decoded line; ValueError when the line is not a trial record."""
  if not isinstance(obj, dict) or not isinstance(obj.get("hparams"), dict):
    raise ValueError("no hparams")
  hp = obj["hparams"]
  regime = obj.get("regime", hp.get("regime"))
  if not isinstance(regime, str):
    raise ValueError("no regime")
  status = obj.get("status", "ok")
  diverged = bool(obj.get("diverged", False))
  metrics = obj.get("metrics") or {}
  clean = metrics.get("test_accuracy")
  # A finished trial without a finite test accuracy is kept: quality.py classifies it (collapsed) and
  # the report lists it, instead of counting it among malformed lines.
  rob = []
  for r in obj.get("robustness") or ():
    if _finite(r.get("eps")) is not None and _finite(r.get("accuracy")) is not None:
      n = r.get("examples")
      rob.append((str(r.get("attack", "?")).lower(), _norm_name(r.get("norm")), float(r["eps"]),
                  float(r["accuracy"]), int(n) if isinstance(n, int) and n > 0 else None))
  hessian = obj.get("hessian") if isinstance(obj.get("hessian"), dict) else {}
  history = [_finite(h.get("train/loss")) for h in obj.get("history") or () if isinstance(h, dict)]
  checks = obj.get("robustness_checks")
  return Trial(
      trial_id=str(obj.get("trial_id", f"line{lineno}")), regime=regime, status=str(status),
      batch_size=int(hp["batch_size"]), momentum=round(float(hp["momentum"]), 6), seed=int(hp["seed"]),
      lr_used=_finite(hp.get("scaled_lr", hp.get("lr"))), epochs=hp.get("epochs"), diverged=diverged,
      clean=_finite(clean), robustness=tuple(rob), top_eig=lambda_max(hessian), error=str(obj.get("error", "")),
      hparams=hp, min_eig=_finite(hessian.get("min_eigenvalue")), train_loss=_finite(metrics.get("train_loss")),
      loss_history=tuple(h for h in history if h is not None),
      checks=checks if isinstance(checks, dict) else None,
      not_converged=tuple(str(w) for w in hessian.get("not_converged") or ()), metrics=metrics,
      divergence=obj.get("divergence") if isinstance(obj.get("divergence"), dict) else None)


def load_results(sweep_dir):
  """(trials, notes): the parsed results (last line wins per trial id) and remarks about the file."""
  if not os.path.isdir(sweep_dir):
    raise UsageError(f"--sweep_dir={sweep_dir}: not a directory")
  path = os.path.join(sweep_dir, "results.jsonl")
  if not os.path.isfile(path):
    raise UsageError(f"--sweep_dir={sweep_dir}: no results (results.jsonl is missing)")
  by_id: Dict[str, Trial] = {}
  malformed = duplicates = 0
  with open(path, encoding="utf-8") as f:
    for lineno, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        trial = parse_trial(json.loads(line), lineno)
      except (ValueError, TypeError, KeyError, AttributeError):
        malformed += 1
        continue
      duplicates += trial.trial_id in by_id
      by_id[trial.trial_id] = trial
  notes = []
  if malformed:
    print(f"warning: skipped {malformed} malformed line(s) of {path}", file=sys.stderr)
    notes.append(f"{malformed} malformed line(s) of results.jsonl were skipped.")
  if duplicates:
    notes.append(f"{duplicates} line(s) repeated an earlier trial id; the last line of each id was used.")
  if not by_id:
    raise UsageError(f"--sweep_dir={sweep_dir}: no results (results.jsonl holds no trial record"
                     + (f"; {malformed} malformed line(s))" if malformed else ")"))
  return list(by_id.values()), notes


def load_sweep(sweep_dir, notes):
  """sweep.json as a dict, or None (absent or unreadable: noted, the report goes on)."""
  path = os.path.join(sweep_dir, "sweep.json")
  if not os.path.isfile(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      sweep = json.load(f)
    if isinstance(sweep, dict):
      return sweep
  except ValueError:
    pass
  notes.append("sweep.json could not be read; the grid was inferred from the results.")
  return None


# ---------------------------------------------------------------------------------------------- selection

@dataclasses.dataclass(frozen=True)
class AdvChoice:
  """Which robustness number is "adversarial accuracy": one attack, norm and ε (pixel scale [0, 1])."""
  attack: str
  norm: str
  eps: float
  why: str

  @property
  def label(self):
    n = "L∞" if self.norm == "inf" else f"L{self.norm}"
    return f"{self.attack.upper()} {n}, ε={self.eps:g} ({255 * self.eps:.3g}/255)"


def _same(a, b):
  return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def choose_adv(trials, sweep) -> Optional[AdvChoice]:
  """PGD L∞ at sweep.json's report_eps, else the middle ε of the grid (another attack if PGD L∞ is absent)."""
  entries = [r for t in trials if t.usable for r in t.robustness]
  if not entries:
    return None
  kinds = {(a, n) for a, n, *_ in entries}
  kind = next((k for k in ATTACK_PREFERENCE if k in kinds), min(kinds))
  epss = sorted({e for a, n, e, *_ in entries if (a, n) == kind and e > 0}) or [0.0]
  middle = epss[len(epss) // 2]
  want = (sweep or {}).get("report_eps")
  fallback = "" if kind == ("pgd", "inf") else " (no PGD L∞ results, so the first of PGD L2, FGSM L∞, FGSM L2)"
  if isinstance(want, (int, float)):
    match = [e for e in epss if _same(e, float(want))]
    if match:
      return AdvChoice(*kind, match[0], "sweep.json report_eps" + fallback)
    return AdvChoice(*kind, middle, f"middle ε of the grid: sweep.json report_eps={want:g} was not "
                                    f"evaluated" + fallback)
  return AdvChoice(*kind, middle, "middle ε of the grid (sweep.json gives no report_eps)" + fallback)


def _adv_entries(trial, choice):
  if choice is None:
    return []
  return [(acc, n) for a, nm, e, acc, n in trial.robustness
          if (a, nm) == (choice.attack, choice.norm) and _same(e, choice.eps)]


def adv_accuracy(trial, choice):
  """Lowest accuracy among the trial's entries for the chosen attack (several entries: the strongest)."""
  accs = [acc for acc, _ in _adv_entries(trial, choice)]
  return min(accs) if accs else None


def adv_examples(trial, choice):
  """How many test examples the chosen adversarial accuracy was measured on (None: not recorded)."""
  ns = [n for acc, n in _adv_entries(trial, choice) if n]
  return min(ns) if ns else None


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
