"""The robustness evaluator's frozen config, its default ε grids and the names of its attacks and norms (the
one place they are defined). No TensorFlow, no absl: bad values are refused before anything is computed or
written. Its flags are in tfrobust/cli/flags/robustness.py.

Units: ε and the PGD step size on the [0, 1] pixel scale, in the attack's norm; accuracies and tolerances are
fractions in [0, 1]; APGD steps are gradient evaluations and Square queries model evaluations, per example.
"""

import dataclasses
import math
from typing import Optional, Tuple

from tfrobust.errors import UsageError

# fgsm, pgd: cleverhans (attacks.py). apgd_ce, apgd_dlr: APGD with the cross-entropy or the DLR loss (apgd.py).
# square: the gradient-free Square attack (square.py). autoattack: APGD-CE, then APGD-T (targeted DLR), then Square,
# each only on the examples every earlier one failed on (AutoAttack's standard sequence without FAB; sequences.py).
ATTACKS = ("fgsm", "pgd", "apgd_ce", "apgd_dlr", "square", "autoattack")
DEFAULT_ATTACKS = ("fgsm", "pgd")  # What a config made without --attacks measures (as before APGD existed).
# Which attack's curve stands for "the strongest attack" of a norm in the checks: the first of these asked for.
STRENGTH_ORDER = ("autoattack", "pgd", "apgd_ce", "apgd_dlr", "square", "fgsm")
# The settings only these attacks read: hparams() records them only when one of them is on (or the deep check,
# which runs the autoattack sequence), so the settings of a run or study without them read as before they existed.
USES = {"apgd_steps": ("apgd_ce", "apgd_dlr", "autoattack"), "apgd_restarts": ("apgd_ce", "apgd_dlr", "autoattack"),
        "square_queries": ("square", "autoattack")}
NORMS = ("inf", "2")  # as the flags spell them; NORM_NAMES as result keys and TensorBoard tags spell them
NORM_NAMES = {"inf": "linf", "2": "l2"}
# Backends of the attack: how a PGD step is computed, by cleverhans (fast_gradient_method, clip_eta, clip) or by
# the fused tfrobust.ops step (the only meaning of "backend" in tfrobust).
BACKENDS = ("cleverhans", "fused")

# (L∞ grid, L2 grid) per kind of data, ε on the [0, 1] pixel scale. A naturally trained network is fooled at
# ε far below the radii of adversarial training (0.3 on MNIST, 8/255 on CIFAR-10), so each grid starts fine
# enough to separate natural models and goes on until PGD accuracy is ~0. Measured (docs/robustness.md):
DEFAULT_EPS = {
    # 8x8 digits (d = 64, pixel levels of 1/16). MLP, 98% clean: PGD-20 L∞ 92/57/7/0% at ε = .02/.05/.1/.2,
    # L2 84/45/2/0% at ε = .1/.25/.5/1.
    "digits": ((0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3),
               (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)),
    # 28x28 grey (d = 784): natural LeNets fall to ~0 by ε∞ ≈ 0.15-0.2 and ε2 ≈ 2-3 (0.3 and 2 are the usual
    # robust-training radii, where natural models are long at 0).
    "mnist": ((0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3),
              (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)),
    # 32x32x3 natural images (d = 3072): natural CIFAR-10 models drop below 10% by ε∞ ≈ 2-4/255 and
    # ε2 ≈ 0.25-0.5; 8/255 and 0.5 (the adversarial-training radii) close the grids.
    "cifar": (tuple(k / 255 for k in (0, 0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8)),
              (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0)),
}
_GRID_OF = {"digits": "digits", "mnist5k": "mnist", "mnist": "mnist", "fashion_mnist": "mnist",
            "kmnist": "mnist", "emnist": "mnist", "cifar10": "cifar", "cifar100": "cifar", "svhn_cropped": "cifar"}
# Config field -> the flag that sets it (for error messages).
FLAG_OF = {"attacks": "attacks", "norms": "norms", "eps": "eps", "eps_l2": "eps_l2", "pgd_steps": "pgd_steps",
           "pgd_step_size": "pgd_step_size", "pgd_restarts": "pgd_restarts", "eval_examples": "eval_examples",
           "apgd_steps": "apgd_steps", "apgd_restarts": "apgd_restarts", "square_queries": "square_queries",
           "batch_size": "attack_batch_size", "seed": "attack_seed", "backend": "attack_backend",
           "deep_check": "robustness_deep_check", "max_eps_accuracy": "robustness_max_eps_accuracy",
           "tolerance": "robustness_tolerance", "deep_check_tolerance": "robustness_deep_check_tolerance",
           "zero_grad_tolerance": "robustness_zero_grad_tolerance", "eps_order": "eps_order",
           "bisection_steps": "bisection_steps"}
# The orders the early stop sweeps ε in (sequences.py): descending costs each example the attack's whole budget
# once; ascending never counts an example robust that an attack at that very ε fools.
EPS_ORDERS = ("descending", "ascending")
MAX_BISECTION_STEPS = 20  # 2^-20 of a grid interval is below float32 pixel resolution.


def default_grid_name(dataset, input_shape):
  """Which DEFAULT_EPS grid fits: by dataset name, else by image size (≤ 16x16, grey, colour)."""
  if dataset in _GRID_OF:
    return _GRID_OF[dataset]
  h, w, c = (tuple(input_shape) + (1,))[:3]
  return "digits" if h * w <= 256 else ("mnist" if c == 1 else "cifar")


@dataclasses.dataclass(frozen=True)
class RobustnessConfig:
  """What the robustness evaluator measures. ε on the [0, 1] pixel scale; accuracies and tolerances are fractions."""
  attacks: Tuple[str, ...] = DEFAULT_ATTACKS
  norms: Tuple[str, ...] = NORMS
  eps: Optional[Tuple[float, ...]] = None  # L∞ grid; None: DEFAULT_EPS for the dataset. ε = 0 is always added.
  eps_l2: Optional[Tuple[float, ...]] = None  # L2 grid, likewise.
  dataset: str = ""  # Only picks the default grids.
  pgd_steps: int = 20
  pgd_step_size: Optional[float] = None  # None: 2.5·ε/steps (Madry et al.); always capped at ε.
  pgd_restarts: int = 1
  apgd_steps: int = 100  # APGD iterations per run (gradient evaluations); AutoAttack's standard 100.
  apgd_restarts: int = 1  # APGD random starts (per target class for APGD-T); AutoAttack's standard 1.
  square_queries: int = 5000  # Square's model evaluations per example, the start included; AutoAttack's 5000.
  eval_examples: Optional[int] = None  # None: the whole test set.
  batch_size: int = 500  # Global batch, split over the replicas.
  seed: int = 0  # Random starts and noise are a function of (seed, example index, restart).
  backend: str = "cleverhans"  # PGD step: cleverhans's FGM + clip_eta + clip, or the fused tfrobust.ops step.
  deep_check: bool = False  # Also the autoattack sequence (with 2x the APGD steps and restarts when it is asked for).
  max_eps_accuracy: float = 0.05  # The strongest attack must push accuracy below this at the largest ε.
  tolerance: float = 0.01  # Sampling-noise slack of the monotonicity, PGD ≤ FGSM and noise checks.
  deep_check_tolerance: float = 0.01  # Largest accuracy drop the deep check's autoattack sequence may find.
  zero_grad_tolerance: float = 0.01  # Largest fraction of examples with an exactly zero input gradient.
  eps_order: str = "descending"  # The early stop's order along the ε grid (EPS_ORDERS, sequences.py).
  bisection_steps: int = 0  # Halvings of each example's bracket of its smallest fooling ε between grid points.

  def _bad(self, field, why):
    def show(v):
      return f"{v:g}" if isinstance(v, float) else str(v)
    value = getattr(self, field)
    value = ",".join(map(show, value)) if isinstance(value, (tuple, list)) else show(value)
    raise UsageError(f"--{FLAG_OF[field]}={value}: {why}")

  def validate(self):
    """Raises UsageError naming the flag of the first bad value; returns self."""
    if not self.attacks:
      self._bad("attacks", "give at least one attack")
    for name in self.attacks:
      if name not in ATTACKS:
        self._bad("attacks", f"unknown attack {name!r}; choose from {', '.join(ATTACKS)}")
    if not self.norms:
      self._bad("norms", "give at least one norm")
    for norm in self.norms:
      if norm not in NORMS:
        self._bad("norms", f"unknown norm {norm!r}; choose from {', '.join(NORMS)}")
    for field in ("eps", "eps_l2"):
      grid = getattr(self, field)
      if grid is not None and not grid:
        self._bad(field, "give at least one ε (leave the flag out for the dataset's default grid)")
      if grid is not None and not all(math.isfinite(e) and e >= 0 for e in grid):
        self._bad(field, "every ε must be a finite number >= 0 (on the [0, 1] pixel scale)")
      # The early stop attacks at each ε only what its neighbour left (sequences.py): a grid out of order or with a
      # value twice is a typo, not a request, and is refused rather than silently sorted.
      if grid is not None and any(b <= a for a, b in zip(grid, grid[1:])):
        self._bad(field, "the ε grid must be strictly ascending (no value twice)")
    if self.pgd_steps <= 0:
      self._bad("pgd_steps", "must be > 0")
    if self.pgd_step_size is not None and not (math.isfinite(self.pgd_step_size) and self.pgd_step_size > 0):
      self._bad("pgd_step_size", "must be a finite number > 0 (leave it out for 2.5·ε/steps)")
    for field in ("pgd_restarts", "apgd_steps", "apgd_restarts"):
      if getattr(self, field) <= 0:
        self._bad(field, "must be > 0")
    if self.square_queries <= 0:
      self._bad("square_queries", "the query budget must be > 0 (model evaluations per example)")
    if self.eval_examples is not None and self.eval_examples <= 0:
      self._bad("eval_examples", "must be > 0 (leave it out for the whole test set)")
    if self.batch_size <= 0:
      self._bad("batch_size", "must be > 0")
    if self.backend not in BACKENDS:
      self._bad("backend", f"choose one of {', '.join(BACKENDS)}")
    if self.eps_order not in EPS_ORDERS:
      self._bad("eps_order", f"choose one of {', '.join(EPS_ORDERS)}")
    if not 0 <= self.bisection_steps <= MAX_BISECTION_STEPS:
      self._bad("bisection_steps", f"must be in [0, {MAX_BISECTION_STEPS}] (0: the grid's ε only)")
    for field in ("max_eps_accuracy", "tolerance", "deep_check_tolerance", "zero_grad_tolerance"):
      value = getattr(self, field)
      if not (math.isfinite(value) and 0 <= value <= 1):
        self._bad(field, "must be a fraction in [0, 1]")
    return self

  def grid(self, norm, input_shape):
    """The ε values evaluated for `norm`: the given grid (ascending, validate() says) or the dataset's default,
    with 0 added first."""
    given = self.eps if norm == "inf" else self.eps_l2
    if given is None:
      given = DEFAULT_EPS[default_grid_name(self.dataset, input_shape)][0 if norm == "inf" else 1]
    return sorted(set(float(e) for e in given) | {0.0})

  def step_size(self, eps, steps):
    """The PGD step on the [0, 1] scale: given, or 2.5·ε/steps; capped at ε (cleverhans requires step ≤ ε)."""
    step = 2.5 * eps / steps if self.pgd_step_size is None else self.pgd_step_size
    return min(step, eps)

  def hparams(self):
    """The settings as a JSON-ready dict (result.json's `robustness_config`)."""
    d = dataclasses.asdict(self)
    for key in ("attacks", "norms", "eps", "eps_l2"):
      d[key] = None if d[key] is None else list(d[key])
    for key, attacks in USES.items():
      if not self.deep_check and not set(attacks) & set(self.attacks):
        del d[key]
    return d

  @classmethod
  def from_hparams(cls, recorded):
    """The config a run recorded (`hparams()` as hparams.json holds it), to attack its network again: lists back to
    tuples, the settings hparams() leaves out (those of attacks not asked for) at their defaults, keys that are no
    setting (a section's `examples`) ignored."""
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items() if k in known})

  def strongest(self):
    """The attack whose curve stands for the strongest of those asked for (STRENGTH_ORDER)."""
    return next(a for a in STRENGTH_ORDER if a in self.attacks)


def curve_name(attack, norm):
  """`pgd_linf`, `fgsm_l2`, ...: the key of result.json's summary and of TensorBoard's `adv/` scalars."""
  return f"{attack}_{NORM_NAMES[norm]}"
