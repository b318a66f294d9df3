"""The Hessian evaluator's frozen config: what to measure about the Hessian of the training loss and on which
examples. No TensorFlow, no absl: entry points reject bad values before TF loads. Its flags (--hessian_*) are in
tfrobust/cli/flags/hessian.py.
"""

import dataclasses
import math
from typing import Optional

from tfrobust.errors import UsageError

METHODS = ("power", "lanczos")
# PyHessian#5: estimates on a few hundred examples vary by 10x; its maintainer recommends ~4,096.
DEFAULT_EXAMPLES = 4096
WHOLE_SET_DATASETS = ("digits",)
_FLAG_NAMES = {"subset_seed": "hessian_seed"}


@dataclasses.dataclass(frozen=True)
class HessianConfig:
  """What to measure about the Hessian and on which examples. `examples=None`: the whole training set for
  digits, min(4096, training set) otherwise. `max_iter` bounds products per eigenvalue (power), Lanczos steps,
  Hutchinson samples and SLQ steps; `tol` is the relative tolerance of each."""
  top_k: int = 1
  examples: Optional[int] = None
  subset_seed: int = 0
  method: str = "lanczos"
  max_iter: int = 100
  tol: float = 1e-3
  trace: bool = False
  density: bool = False
  input: bool = False
  per_layer: bool = False
  repeats: int = 1
  batch_size: int = 512

  def _bad(self, field, why):
    raise UsageError(f"--{_FLAG_NAMES.get(field, 'hessian_' + field)}={getattr(self, field)}: {why}")

  def validate(self):
    """Checks what can be checked without the model and data; raises UsageError naming the flag."""
    if self.top_k <= 0:
      self._bad("top_k", "must be >= 1")
    if self.examples is not None and self.examples <= 0:
      self._bad("examples", "must be >= 1")
    if self.method not in METHODS:
      self._bad("method", f"choose one of {', '.join(METHODS)}")
    if self.max_iter <= 0:
      self._bad("max_iter", "must be >= 1")
    if not (math.isfinite(self.tol) and self.tol > 0):
      self._bad("tol", "must be a finite number > 0")
    if self.repeats <= 0:
      self._bad("repeats", "must be >= 1")
    if self.batch_size <= 0:
      self._bad("batch_size", "must be >= 1")
    if self.method == "lanczos" and self.max_iter < self.top_k:
      self._bad("max_iter", f"Lanczos needs at least --hessian_top_k={self.top_k} steps")
    return self

  def num_examples(self, dataset_name, num_train):
    """The subset size: the flag, else the default for this dataset."""
    if self.examples is not None:
      return self.examples
    return num_train if dataset_name in WHOLE_SET_DATASETS else min(DEFAULT_EXAMPLES, num_train)

  def validate_against(self, num_params, num_train):
    """Checks that need the model (its number of parameters) and the training set size."""
    if self.top_k > num_params:
      self._bad("top_k", f"larger than the model's {num_params} parameters")
    if self.examples is not None and self.examples > num_train:
      self._bad("examples", f"larger than the training set ({num_train} examples)")
    return self

  def hparams(self):
    """The settings as a JSON-ready dict (what a run records of its Hessian section)."""
    return dataclasses.asdict(self)
