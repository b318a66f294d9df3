"""The frozen configs of a run: the one-way hand-off from flags (tfrobust.cli) to data, model, training and
evaluators. No TensorFlow, no absl: a bad value is refused before anything heavy loads.

Each evaluator's own config lives beside it (tfrobust/evaluators/<name>/config.py), the study's grid in
tfrobust/study/grid.py; ExperimentConfig holds the evaluator configs by their registry name.
Units: learning rate per SGD step, pixel scale [0, 1], loss averaged over the global batch.
"""

import dataclasses
import math
from typing import Any, Mapping, Optional, Tuple

from tfrobust.errors import UsageError

MODELS = ("mlp", "lenet", "c1", "c2", "resnet20", "vgg11")  # built by tfrobust.models
# Training-set augmentation (tfrobust.data): crop_flip for CIFAR, crop for SVHN (a mirrored 2 is no 2).
AUGMENTATIONS = ("none", "crop_flip", "crop")
LR_SCALINGS = ("none", "linear", "sqrt")
# The study's regimes and the --lr_scaling each one trains with (docs/study.md): η at every B; η/B fixed (η·B/B₀);
# η·√(B/B₀). The one place their names are spelled; tfrobust.study and tfrobust.report read them here.
REGIMES = {"fixed_lr": "none", "constant_ratio": "linear", "sqrt": "sqrt"}
LR_SCHEDULES = ("constant", "step", "cosine")


def steps_per_epoch(num_train_examples, batch_size):
  """SGD steps in one epoch: the training loop drops each epoch's last partial batch (tfrobust.data), so every step
  sees exactly B examples. The one definition; everything that counts steps asks here."""
  return num_train_examples // batch_size


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything that shapes one training run. `hparams()` is what result.json and resume compare."""
  dataset: str = "digits"
  data_dir: Optional[str] = None
  model: str = "mlp"
  batchnorm: bool = False
  augment: str = "none"
  batch_size: int = 256
  lr: float = 0.05
  lr_scaling: str = "none"
  base_batch_size: int = 256
  lr_schedule: str = "constant"
  lr_decay_epochs: Tuple[float, ...] = ()
  lr_decay_factor: float = 0.1
  warmup_epochs: float = 0.0
  momentum: float = 0.9
  nesterov: bool = False
  weight_decay: float = 0.0
  epochs: int = 60
  # SGD updates to stop after (0: no cap, the epochs budget). A study's steps budget sets it with
  # epochs = ceil(max_steps / steps per epoch), so the last epoch may be partial.
  max_steps: int = 0
  # nats; > 0: the loss budget. Training stops at the first epoch end whose cross-entropy over the whole training
  # set (inference mode, the same measure as result.json's metrics["train/loss"]) is at or below this; `epochs` is
  # then the cap, and a run that reaches it without the target did not reach it. 0: no target.
  target_train_loss: float = 0.0
  seed: int = 0
  jit_compile: bool = False
  deterministic: bool = False
  steps_per_call: int = 16
  checkpoint_every_steps: int = 0
  # Run settings that change what is saved or measured along the way, never the trained weights (not in hparams):
  checkpoint_every_s: float = 0.0  # 0: a checkpoint at every epoch's end; else at the first epoch end this long
  # after the last one, and at the end (a study's default: most trials then checkpoint once)
  epoch_test_eval: bool = True  # the test set's loss and accuracy in every epoch's history (the curves' only use)
  eval_batch_size: int = 1000

  @property
  def scaled_lr(self):
    """The peak learning rate after the batch-size scaling rule: η·B/B₀ (linear) or η·√(B/B₀) (sqrt)."""
    ratio = self.batch_size / self.base_batch_size
    if self.lr_scaling == "linear":
      return self.lr * ratio
    if self.lr_scaling == "sqrt":
      return self.lr * math.sqrt(ratio)
    return self.lr

  def hparams(self):
    """The hyperparameters that define the run (not where it runs or how often it saves)."""
    d = dataclasses.asdict(self)
    for key in ("data_dir", "steps_per_call", "checkpoint_every_steps", "checkpoint_every_s", "epoch_test_eval",
                "eval_batch_size"):
      d.pop(key)
    d["lr_decay_epochs"] = list(self.lr_decay_epochs)
    d["scaled_lr"] = self.scaled_lr
    # What fixes the run's length. The target enters only where it is set, so that every run and sweep written
    # before the loss budget existed keeps its identity (absent means no target).
    d["budget"] = "loss" if self.target_train_loss else "steps" if self.max_steps else "epochs"
    if not self.target_train_loss:
      d.pop("target_train_loss")
    return d

  def validate(self):
    """Checks what can be checked without the data; raises UsageError naming the flag."""
    def bad(flag, why):
      raise UsageError(f"--{flag}={getattr(self, flag)}: {why}")
    if not (math.isfinite(self.lr) and self.lr > 0):
      bad("lr", "must be a finite number > 0")
    if self.batch_size <= 0:
      bad("batch_size", "must be > 0")
    if self.base_batch_size <= 0:
      bad("base_batch_size", "must be > 0")
    if self.epochs <= 0:
      bad("epochs", "must be > 0")
    if self.max_steps < 0:
      bad("max_steps", "must be >= 0 (0: no cap, train --epochs epochs)")
    if not (math.isfinite(self.target_train_loss) and self.target_train_loss >= 0):
      bad("target_train_loss", "must be a finite number of nats >= 0 (0: no target)")
    if self.target_train_loss and self.max_steps:
      bad("target_train_loss", "a loss target and --max_steps are two budgets; give one")
    if not (0 <= self.momentum < 1):
      bad("momentum", "must be in [0, 1)")
    if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
      bad("weight_decay", "must be a finite number >= 0")
    if self.model not in MODELS:
      bad("model", f"unknown model; choose one of {', '.join(MODELS)}")
    if self.augment not in AUGMENTATIONS:
      bad("augment", f"choose one of {', '.join(AUGMENTATIONS)}")
    if self.lr_scaling not in LR_SCALINGS:
      bad("lr_scaling", f"choose one of {', '.join(LR_SCALINGS)}")
    if self.lr_schedule not in LR_SCHEDULES:
      bad("lr_schedule", f"choose one of {', '.join(LR_SCHEDULES)}")
    if self.lr_schedule == "step" and not self.lr_decay_epochs:
      bad("lr_decay_epochs", "the step schedule needs at least one epoch to decay at")
    if any(e <= 0 for e in self.lr_decay_epochs):
      bad("lr_decay_epochs", "epochs must be > 0")
    if not (0 < self.lr_decay_factor <= 1):
      bad("lr_decay_factor", "must be in (0, 1]")
    if not (0 <= self.warmup_epochs < self.epochs):
      bad("warmup_epochs", "must be in [0, epochs)")
    if self.steps_per_call <= 0:
      bad("steps_per_call", "must be > 0")
    if self.checkpoint_every_steps < 0:
      bad("checkpoint_every_steps", "must be >= 0 (0: only at the end of each epoch)")
    if not (math.isfinite(self.checkpoint_every_s) and self.checkpoint_every_s >= 0):
      bad("checkpoint_every_s", "must be a finite number of seconds >= 0 (0: at the end of every epoch)")
    if self.eval_batch_size <= 0:
      bad("eval_batch_size", "must be > 0")
    return self

  def validate_against(self, num_train_examples, num_replicas=1):
    """Checks that need the data and the strategy."""
    if self.batch_size > num_train_examples:
      raise UsageError(f"--batch_size={self.batch_size}: larger than the training set "
                       f"({num_train_examples} examples of {self.dataset})")
    if self.batch_size % num_replicas:
      raise UsageError(f"--batch_size={self.batch_size}: must be divisible by the {num_replicas} replicas")
    spe = steps_per_epoch(num_train_examples, self.batch_size)
    if self.max_steps and self.epochs != -(-self.max_steps // spe):
      # epochs is recorded with the run: it must be the epochs max_steps really takes.
      raise UsageError(f"--max_steps={self.max_steps}: at {spe} steps per epoch that is "
                       f"{-(-self.max_steps // spe)} epochs, not --epochs={self.epochs}")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """One run: training plus the evaluator sections asked for, keyed by their name in tfrobust.evaluators.REGISTRY
  (e.g. {"robustness": RobustnessConfig(...)}); an evaluator left out does not run."""
  train: TrainConfig = TrainConfig()
  evaluators: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  export_saved_model: bool = True  # the trained model as a SavedModel (a study's default: off, it costs a second)

  def section(self, name):
    """The config of evaluator `name`, or None when it is not asked for."""
    return self.evaluators.get(name)

  def validate(self):
    """Checks training and every evaluator section that can be checked without the data (UsageError naming the
    flag). The boundary calls it once: the entry point before TensorFlow loads, or run_experiment / run_study for
    a caller from Python; nothing inside validates again."""
    self.train.validate()
    for config in self.evaluators.values():
      if config is not None:
        config.validate()
    return self
