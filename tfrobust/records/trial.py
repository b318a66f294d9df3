"""A results.jsonl line (or a result.json) as a Trial, and the headline choice: which robustness number is "the
adversarial accuracy" a study compares (one attack, norm and ε). The study prints it per point and writes it to
TensorBoard, the report compares it: both ask here, so they show the same number.
"""

import dataclasses
import math
from typing import Optional, Tuple

from tfrobust.records import upgrade

# Which attack's accuracy is "the adversarial accuracy" when several were measured: the strongest first (AutoAttack's
# sequence, then APGD-CE, then PGD; the gradient-free and single-loss ones after), each L∞ before L2.
STRENGTH_ORDER = ("autoattack", "apgd_ce", "pgd", "apgd_dlr", "square", "fgsm")
ATTACK_PREFERENCE = tuple((a, n) for a in STRENGTH_ORDER for n in ("inf", "2"))


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
  train_loss: Optional[float] = None  # final training loss over the whole training set (metrics["train/loss"])
  train_accuracy: Optional[float] = None  # final training accuracy over the whole training set
  loss_history: Tuple[float, ...] = ()  # per-epoch mean training loss (history[i]["train/loss"])
  checks: Optional[dict] = None  # robustness_checks: {name: {"passed": bool, "detail": str, ...}}
  not_converged: Tuple[str, ...] = ()  # hessian.not_converged
  metrics: Optional[dict] = None
  divergence: Optional[dict] = None
  num_classes: Optional[int] = None  # result.json data.num_classes (None: written before runs recorded it)
  test_examples: Optional[int] = None  # result.json data.test_examples: the clean accuracy's test examples

  @property
  def key(self):
    return (self.regime, self.batch_size, self.momentum, self.seed)

  @property
  def usable(self):
    """Finished with a finite clean accuracy (the report's quality rules then sort these further)."""
    return self.status == "ok" and not self.diverged and self.clean is not None and math.isfinite(self.clean)

  @property
  def budget(self):
    """"epochs" or "steps" (hparams.budget, through the upgrade path for older results)."""
    return str(self.hparams["budget"])

  @property
  def max_steps(self):
    return int(self.hparams.get("max_steps") or 0)


def norm_name(norm):
  """"inf" or "2" from any spelling of the norm ("linf", "np.inf", 2.0, ...)."""
  s = str(norm).lower().replace("np.", "").lstrip("l").lstrip("_")
  return "2" if s in ("2", "2.0") else "inf" if s in ("inf", "infinity") else s


def finite(x):
  """x as a float when it is a finite number, else None."""
  return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _positive_int(x):
  return x if isinstance(x, int) and not isinstance(x, bool) and x > 0 else None


def lambda_max(hessian):
  """λ_max of a hessian section: top_eigenvalues[0] (k largest in descending algebraic order, the format that
  also records min_eigenvalue); older results, whose order is not guaranteed, give the largest of them.
  Never max |λ|: a negative λ must stay negative."""
  eigs = [finite(e) for e in (hessian.get("top_eigenvalues") or ())]
  if "min_eigenvalue" in hessian:
    return eigs[0] if eigs else None
  eigs = [e for e in eigs if e is not None]
  return max(eigs) if eigs else None


def parse_trial(obj, lineno=0):
  """A Trial from one decoded line; ValueError when the line is not a trial record."""
  if not isinstance(obj, dict) or not isinstance(obj.get("hparams"), dict):
    raise ValueError("no hparams")
  hp = upgrade.hparams(obj["hparams"])
  regime = obj.get("regime", hp.get("regime"))
  if not isinstance(regime, str):
    raise ValueError("no regime")
  metrics = upgrade.metrics(obj.get("metrics") or {})
  rows, checks = upgrade.robustness(obj)
  rob = []
  for r in rows:
    if finite(r.get("eps")) is not None and finite(r.get("accuracy")) is not None:
      rob.append((str(r.get("attack", "?")).lower(), norm_name(r.get("norm")), float(r["eps"]),
                  float(r["accuracy"]), _positive_int(r.get("examples"))))
  hessian = obj.get("hessian") if isinstance(obj.get("hessian"), dict) else {}
  history = [finite(h.get("train/loss")) for h in obj.get("history") or () if isinstance(h, dict)]
  data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
  return Trial(
      trial_id=str(obj.get("trial_id", f"line{lineno}")), regime=regime, status=str(obj.get("status", "ok")),
      batch_size=int(hp["batch_size"]), momentum=round(float(hp["momentum"]), 6), seed=int(hp["seed"]),
      lr_used=finite(hp.get("scaled_lr", hp.get("lr"))), epochs=hp.get("epochs"),
      diverged=bool(obj.get("diverged", False)), clean=finite(metrics.get("test/accuracy")),
      robustness=tuple(rob), top_eig=lambda_max(hessian), error=str(obj.get("error", "")), hparams=hp,
      min_eig=finite(hessian.get("min_eigenvalue")), train_loss=finite(metrics.get("train/loss")),
      train_accuracy=finite(metrics.get("train/accuracy")),
      loss_history=tuple(h for h in history if h is not None),
      checks=checks if isinstance(checks, dict) else None,
      not_converged=tuple(str(w) for w in hessian.get("not_converged") or ()), metrics=metrics,
      divergence=obj.get("divergence") if isinstance(obj.get("divergence"), dict) else None,
      num_classes=_positive_int(data.get("num_classes")), test_examples=_positive_int(data.get("test_examples")))


# ---------------------------------------------------------------------------------------------- the headline

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


def same_eps(a, b):
  return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def choose_adv(trials, report_eps=None) -> Optional[AdvChoice]:
  """The strongest attack measured (ATTACK_PREFERENCE: AutoAttack, APGD-CE, PGD, ...; each L∞ first) at `report_eps`
  (sweep.json's), else at the middle ε of its grid."""
  entries = [r for t in trials if t.usable for r in t.robustness]
  if not entries:
    return None
  kinds = {(a, n) for a, n, *_ in entries}
  kind = next((k for k in ATTACK_PREFERENCE if k in kinds), min(kinds))
  epss = sorted({e for a, n, e, *_ in entries if (a, n) == kind and e > 0}) or [0.0]
  middle = epss[len(epss) // 2]
  fallback = f" (the strongest attack measured: {kind[0]} {'L∞' if kind[1] == 'inf' else 'L2'})"
  if isinstance(report_eps, (int, float)) and not isinstance(report_eps, bool):
    match = [e for e in epss if same_eps(e, float(report_eps))]
    if match:
      return AdvChoice(*kind, match[0], "sweep.json report_eps" + fallback)
    return AdvChoice(*kind, middle, f"middle ε of the grid: sweep.json report_eps={report_eps:g} was not "
                                    f"evaluated" + fallback)
  return AdvChoice(*kind, middle, "middle ε of the grid (sweep.json gives no report_eps)" + fallback)


def _adv_entries(trial, choice):
  if choice is None:
    return []
  return [(acc, n) for a, nm, e, acc, n in trial.robustness
          if (a, nm) == (choice.attack, choice.norm) and same_eps(e, choice.eps)]


def adv_accuracy(trial, choice):
  """Lowest accuracy among the trial's entries for the chosen attack (several entries: the strongest)."""
  accs = [acc for acc, _ in _adv_entries(trial, choice)]
  return min(accs) if accs else None


def adv_examples(trial, choice):
  """How many test examples the chosen adversarial accuracy was measured on (None: not recorded)."""
  ns = [n for acc, n in _adv_entries(trial, choice) if n]
  return min(ns) if ns else None


def headline(trial, report_eps=None):
  """(adversarial accuracy, λ_max) of one finished trial by the report's own rule."""
  return adv_accuracy(trial, choose_adv([trial], report_eps)), trial.top_eig
