"""The tf.distribute strategy a run uses: MultiWorkerMirrored when TF_CONFIG names several workers,
Mirrored over the visible GPUs, else the default (one-device) strategy; N logical CPUs for tests."""

import json
import os

import tensorflow as tf


def split_cpu(num_devices):
  """Splits the CPU into `num_devices` logical devices (tests of multi-replica code on one CPU).

  Must run before TensorFlow initialises its devices, i.e. before any op runs.
  """
  cpus = tf.config.list_physical_devices("CPU")
  tf.config.set_logical_device_configuration(
      cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])


def cpu_mirrored(num_devices):
  """MirroredStrategy over logical CPUs. Its default all-reduce (collective ops) mismatches the order of
  synchronized-BatchNorm and gradient collectives between replicas in TF 2.21; reducing to one device
  has no such ordering."""
  return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(num_devices)],
                                        cross_device_ops=tf.distribute.ReductionToOneDevice())


def _num_tf_config_workers():
  cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
  return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def make_strategy(num_cpu_devices=0):
  """The strategy for this process; `num_cpu_devices` > 1 mirrors over that many logical CPUs."""
  if _num_tf_config_workers() > 1:
    return tf.distribute.MultiWorkerMirroredStrategy()
  if num_cpu_devices > 1:
    split_cpu(num_cpu_devices)
    return cpu_mirrored(num_cpu_devices)
  gpus = tf.config.list_physical_devices("GPU")
  if len(gpus) > 1:
    return tf.distribute.MirroredStrategy()
  if len(gpus) == 1:
    return tf.distribute.OneDeviceStrategy("/gpu:0")
  return tf.distribute.get_strategy()


def is_chief(strategy):
  """Whether this process writes results (every process trains; only the chief writes files)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.cluster_spec().as_dict():
    return True
  return resolver.task_type in ("chief", None) or (
      resolver.task_type == "worker" and resolver.task_id == 0
      and "chief" not in resolver.cluster_spec().as_dict())
