"""Which strategy a process gets and which process writes (distribute.py), against TF's multi-worker convention:
TF_CONFIG's cluster counts its chief and workers (not an evaluator), and the chief writes, or worker 0 where the
cluster has no chief — checked on TF's own SimpleClusterResolver. The multi-replica paths themselves:
tests/train/test_step.py, tests/test_multiworker.py."""

import json
import types

import pytest
import tensorflow as tf

from tfrobust import distribute


def _resolver(cluster, task_type, task_id):
  spec = tf.train.ClusterSpec(cluster)
  resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(spec, task_type=task_type, task_id=task_id)
  return types.SimpleNamespace(cluster_resolver=resolver)


WITH_CHIEF = {"chief": ["h:1"], "worker": ["h:2", "h:3"]}
WORKERS_ONLY = {"worker": ["h:2", "h:3"]}


@pytest.mark.parametrize("strategy, chief", [
    (tf.distribute.get_strategy(), True),  # one process, no cluster
    (_resolver({}, None, None), True),  # a resolver without a cluster
    (_resolver(WITH_CHIEF, "chief", 0), True),
    (_resolver(WITH_CHIEF, "worker", 0), False),  # the cluster has a chief: it writes
    (_resolver(WITH_CHIEF, "worker", 1), False),
    (_resolver(WORKERS_ONLY, "worker", 0), True),  # no chief: worker 0 writes
    (_resolver(WORKERS_ONLY, "worker", 1), False),
], ids=["default", "empty", "chief", "worker0-with-chief", "worker1-with-chief", "worker0", "worker1"])
def test_only_the_chief_or_else_worker_0_writes(strategy, chief):
  assert distribute.is_chief(strategy) is chief


@pytest.mark.parametrize("tf_config, workers", [
    (None, 0),
    ({"cluster": {"worker": ["h:2"]}, "task": {"type": "worker", "index": 0}}, 1),
    ({"cluster": {**WITH_CHIEF, "evaluator": ["h:4"]}, "task": {"type": "chief", "index": 0}}, 3),
])
def test_tf_config_counts_chief_and_workers(monkeypatch, tf_config, workers):
  if tf_config is None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
  else:
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
  assert distribute._num_tf_config_workers() == workers  # pylint: disable=protected-access


def test_one_worker_in_tf_config_is_no_multi_worker_strategy(monkeypatch):
  monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["h:2"]}, "task": {"type": "worker", "index": 0}}))
  strategy = distribute.make_strategy()
  assert not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
  assert strategy.num_replicas_in_sync == max(1, len(tf.config.list_physical_devices("GPU")))
