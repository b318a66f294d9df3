"""What the report reads: results.jsonl lines as Trials, sweep.json, and the choice of the adversarial
accuracy that the claims compare (attack, norm and ε), reduced to the Points of tfrobust.verdicts.

Pure Python (no TensorFlow): the report runs anywhere.
"""

import dataclasses
import json
import math
import os
import sys
from typing import Dict, Optional, Tuple

from tfrobust import verdicts
from tfrobust.errors import UsageError

REGIME_ORDER = ("fixed_lr", "constant_ratio", "sqrt")
ATTACK_PREFERENCE = (("pgd", "inf"), ("pgd", "2"), ("fgsm", "inf"), ("fgsm", "2"))


# ---------------------------------------------------------------------------------------------- reading

@dataclasses.dataclass(frozen=True)
class Trial:
  """One line of results.jsonl. Accuracies are fractions; ε on the [0, 1] pixel scale."""
  trial_id: str
  regime: str
  status: str
  batch_size: int
  momentum: float
  seed: int
  lr_used: Optional[float]
  epochs: Optional[int]
  diverged: bool
  clean: Optional[float]
  robustness: Tuple[Tuple[str, str, float, float], ...]  # (attack, norm, eps, accuracy)
  top_eig: Optional[float]
  error: str
  hparams: dict

  @property
  def key(self):
    return (self.regime, self.batch_size, self.momentum, self.seed)

  @property
  def usable(self):
    return self.status == "ok" and not self.diverged and self.clean is not None and math.isfinite(self.clean)


def _norm_name(norm):
  s = str(norm).lower().replace("np.", "").lstrip("l").lstrip("_")
  return "2" if s in ("2", "2.0") else "inf" if s in ("inf", "infinity") else s


def _finite(x):
  return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


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
  if status == "ok" and not diverged and _finite(clean) is None:
    raise ValueError("a finished trial without a finite test_accuracy")
  rob = []
  for r in obj.get("robustness") or ():
    if _finite(r.get("eps")) is not None and _finite(r.get("accuracy")) is not None:
      rob.append((str(r.get("attack", "?")).lower(), _norm_name(r.get("norm")), float(r["eps"]),
                  float(r["accuracy"])))
  eigs = [e for e in ((obj.get("hessian") or {}).get("top_eigenvalues") or ()) if _finite(e) is not None]
  return Trial(
      trial_id=str(obj.get("trial_id", f"line{lineno}")), regime=regime, status=str(status),
      batch_size=int(hp["batch_size"]), momentum=round(float(hp["momentum"]), 6), seed=int(hp["seed"]),
      lr_used=_finite(hp.get("scaled_lr", hp.get("lr"))), epochs=hp.get("epochs"), diverged=diverged,
      clean=_finite(clean), robustness=tuple(rob), top_eig=max(eigs) if eigs else None,
      error=str(obj.get("error", "")), hparams=hp)


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
  kinds = {(a, n) for a, n, _, _ in entries}
  kind = next((k for k in ATTACK_PREFERENCE if k in kinds), min(kinds))
  epss = sorted({e for a, n, e, _ in entries if (a, n) == kind and e > 0}) or [0.0]
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


def adv_accuracy(trial, choice):
  """Lowest accuracy among the trial's entries for the chosen attack (several entries: the strongest)."""
  if choice is None:
    return None
  accs = [acc for a, n, e, acc in trial.robustness if (a, n) == (choice.attack, choice.norm) and _same(e, choice.eps)]
  return min(accs) if accs else None


def to_points(trials, choice):
  return [verdicts.Point(t.regime, t.batch_size, t.momentum, t.seed, t.clean, adv_accuracy(t, choice), t.top_eig)
          for t in trials if t.usable]


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
