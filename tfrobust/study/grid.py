"""The study's grid: regimes × batch sizes × momenta × seeds, and the training config of each point.

No TensorFlow here: the grid is validated (one-line errors) before anything heavy is imported.
Regimes (docs/study.md): `fixed_lr` keeps η at every B; `constant_ratio` keeps η/B fixed (η·B/B₀, Goyal et
al., Jastrzebski et al.); `sqrt` scales η by √(B/B₀) (Hoffer et al.). B₀ and η are the run flags
--base_batch_size, --lr.

Budgets: `epochs` trains every point for --epochs epochs (every B sees the data equally often); `steps` gives
every point the same number of SGD updates, S = round(epochs · n_train / B₀), so a larger B sees more epochs
(Hoffer et al. 2017, "Train longer, generalize better"). Under `steps` the schedule is adapted too (their
"regime adaptation"): warm-up and step-decay epochs are rescaled so that they fall at the same update for every
B, and cosine spans the S updates. `loss` trains every point until its cross-entropy over the whole training set,
measured at each epoch's end, is at or below --target_train_loss (nats), for at most --max_epochs epochs: networks
are compared at the same training loss, not after the same data or updates (Keskar et al. 2017 compare minima at
≈ 100% training accuracy). A point that reaches the cap without the target is recorded as such (its final
training loss is above the target) and the report counts those per cell. The schedule's epochs (warm-up, decay,
cosine) are those of the cap.
"""

import dataclasses
import itertools
import math
from typing import Optional, Tuple, Union

from tfrobust.config import REGIMES, steps_per_epoch
from tfrobust.errors import UsageError

BUDGETS = ("epochs", "steps", "loss")
AUTO_STACK = "auto"  # --stack_size: as many networks a stack as the memory budget holds


def steps_budget(epochs, num_train_examples, base_batch_size):
  """S, the SGD updates of every point under the steps budget: --epochs epochs' worth of data at B₀."""
  return int(round(epochs * num_train_examples / base_batch_size))


@dataclasses.dataclass(frozen=True)
class GridPoint:
  """One point of the grid: what one trial of the study trains."""
  regime: str
  batch_size: int
  momentum: float
  seed: int

  @property
  def key(self):
    """Stable name of the point: its trial directory and its `trial_id` in results.jsonl."""
    return f"{self.regime}-b{self.batch_size}-m{self.momentum:g}-s{self.seed}"

  def train_config(self, base):
    """The base TrainConfig with this point's B, μ, seed and the regime's learning-rate scaling."""
    return dataclasses.replace(base, batch_size=self.batch_size, momentum=self.momentum, seed=self.seed,
                               lr_scaling=REGIMES[self.regime])


@dataclasses.dataclass(frozen=True)
class Grid:
  """The study's frozen config: regimes × batch sizes × momenta × seeds, and the training budget they share."""
  regimes: Tuple[str, ...]
  batch_sizes: Tuple[int, ...]
  momenta: Tuple[float, ...]
  seeds: Tuple[int, ...]
  budget: str = "epochs"  # BUDGETS
  target_train_loss: Optional[float] = None  # nats; the loss budget's target (only with it)
  max_epochs: Optional[int] = None  # the loss budget's cap (only with it)
  # How many points of one batch size train as one stack (study/stacks.py); 1: one at a time; "auto": as many as
  # stack_memory_mb holds (stacks.auto_stack_size). Neither is part of the grid's identity (as_dict): a stack trains
  # each point as it trains alone, so a study may resume with another size.
  stack_size: Union[int, str] = AUTO_STACK
  stack_memory_mb: float = 2048.0

  def validate(self, *, num_train_examples=None, num_replicas=1, base=None):
    """Raises UsageError naming the flag. With the training-set size and the base TrainConfig it also checks
    that the steps budget gives every B at least one epoch."""
    for flag, values in (("regimes", self.regimes), ("batch_sizes", self.batch_sizes),
                         ("momenta", self.momenta), ("seeds", self.seeds)):
      shown = ",".join(map(str, values))
      if not values:
        raise UsageError(f"--{flag}={shown}: give at least one value")
      if len(set(values)) != len(values):
        raise UsageError(f"--{flag}={shown}: a value is repeated; each grid point must appear once")
    unknown = [r for r in self.regimes if r not in REGIMES]
    if unknown:
      raise UsageError(f"--regimes={','.join(self.regimes)}: unknown regime {unknown[0]!r}; "
                       f"choose from {', '.join(REGIMES)}")
    for b in self.batch_sizes:
      if b <= 0:
        raise UsageError(f"--batch_sizes={','.join(map(str, self.batch_sizes))}: {b} must be > 0")
      if num_train_examples is not None and b > num_train_examples:
        raise UsageError(f"--batch_sizes: {b} is larger than the training set ({num_train_examples} examples)")
      if b % num_replicas:
        raise UsageError(f"--batch_sizes: {b} is not divisible by the {num_replicas} replicas")
    for m in self.momenta:
      if not (math.isfinite(m) and 0 <= m < 1):
        raise UsageError(f"--momenta={','.join(map(str, self.momenta))}: {m} must be in [0, 1)")
    for s in self.seeds:
      if s < 0:
        raise UsageError(f"--seeds={','.join(map(str, self.seeds))}: {s} must be >= 0")
    if self.stack_size != AUTO_STACK and (isinstance(self.stack_size, bool) or not isinstance(self.stack_size, int)
                                          or self.stack_size < 1):
      raise UsageError(f"--stack_size={self.stack_size}: must be an integer >= 1 (1: one network at a time) or "
                       f"{AUTO_STACK}")
    if not (math.isfinite(self.stack_memory_mb) and self.stack_memory_mb > 0):
      raise UsageError(f"--stack_memory_mb={self.stack_memory_mb:g}: must be > 0")
    if self.budget not in BUDGETS:
      raise UsageError(f"--budget={self.budget}: choose one of {', '.join(BUDGETS)}")
    self._validate_loss_budget()
    if self.budget == "steps" and num_train_examples is not None and base is not None:
      total = steps_budget(base.epochs, num_train_examples, base.base_batch_size)
      for b in self.batch_sizes:
        if total < steps_per_epoch(num_train_examples, b):
          raise UsageError(
              f"--budget=steps: --epochs={base.epochs} at --base_batch_size={base.base_batch_size} is {total} "
              f"updates, less than one epoch at B={b} ({steps_per_epoch(num_train_examples, b)} steps); "
              "raise --epochs")
    return self

  def _validate_loss_budget(self):
    """The loss budget needs a target > 0 (nats, finite) and a cap of at least one epoch; the other budgets take
    neither (a target given to them would be silently ignored)."""
    target, cap = self.target_train_loss, self.max_epochs
    if self.budget != "loss":
      for flag, value in (("target_train_loss", target), ("max_epochs", cap)):
        if value:
          raise UsageError(f"--{flag}={value}: only with --budget=loss (this study's budget is {self.budget})")
      return
    if target is None or target == 0:
      raise UsageError("--target_train_loss: --budget=loss needs a target training loss in nats (> 0)")
    if isinstance(target, bool) or not math.isfinite(target) or target <= 0:
      raise UsageError(f"--target_train_loss={target}: must be a finite number of nats > 0")
    if cap is None:
      raise UsageError("--max_epochs: --budget=loss needs a cap in epochs (>= 1) for points that never reach "
                       "the target")
    if isinstance(cap, bool) or cap < 1:
      raise UsageError(f"--max_epochs={cap}: the cap must be at least 1 epoch")

  def train_config(self, point, base, num_train_examples):
    """The TrainConfig of `point`: its B, μ, seed and scaling; under the loss budget the target and the cap as its
    epochs; under the steps budget max_steps = S,
    epochs = ceil(S / steps per epoch) and the schedule's epochs rescaled to fall at the same updates."""
    cfg = point.train_config(base)
    if self.budget == "loss":
      return dataclasses.replace(cfg, epochs=self.max_epochs, target_train_loss=self.target_train_loss)
    if self.budget != "steps":
      return cfg
    total = steps_budget(base.epochs, num_train_examples, base.base_batch_size)
    spe = steps_per_epoch(num_train_examples, point.batch_size)

    def at_same_update(epoch):  # the update of `epoch` of --epochs in S, over this B's steps per epoch
      return epoch * total / base.epochs / spe
    return dataclasses.replace(cfg, max_steps=total, epochs=-(-total // spe),
                               lr_decay_epochs=tuple(at_same_update(e) for e in base.lr_decay_epochs),
                               warmup_epochs=at_same_update(base.warmup_epochs))

  def points(self):
    """Every point once, in the order keras-tuner's oracle enumerates them."""
    return [GridPoint(r, b, m, s) for r, b, m, s in
            itertools.product(self.regimes, self.batch_sizes, self.momenta, self.seeds)]

  def as_dict(self):
    out = {"regimes": list(self.regimes), "batch_sizes": list(self.batch_sizes),
           "momenta": list(self.momenta), "seeds": list(self.seeds), "budget": self.budget}
    if self.budget == "loss":  # only here: sweeps of the other budgets keep the sweep.json they had
      out.update(target_train_loss=self.target_train_loss, max_epochs=self.max_epochs)
    return out
