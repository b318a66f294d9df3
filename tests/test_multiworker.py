"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 train like one process (bounded)."""

import json
import os
import socket

import pytest

from conftest import run_module, start_module

ARGS = ["--dataset=digits", "--model=mlp", "--batch_size=64", "--epochs=2", "--lr=0.05"]


def _free_ports(n):
  socks = [socket.socket() for _ in range(n)]
  for s in socks:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


def test_two_workers_match_one_process(tmp_path):
  single = str(tmp_path / "single")
  proc = run_module("tfrobust.main", *ARGS, f"--output_dir={single}")
  assert proc.returncode == 0, proc.stderr[-2000:]

  out = str(tmp_path / "multi")
  workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
  procs = []
  for index in range(2):
    tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
    procs.append(start_module("tfrobust.main", *ARGS, f"--output_dir={out}",
                              env={"TF_CONFIG": json.dumps(tf_config)}))
  try:
    outputs = [p.communicate(timeout=240) for p in procs]
  finally:
    for p in procs:
      p.kill()
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
  multi = json.load(open(os.path.join(out, "result.json")))
  ref = json.load(open(os.path.join(single, "result.json")))
  assert multi["num_replicas"] == 2
  for key in ("train/loss", "test/loss"):
    assert multi["metrics"][key] == pytest.approx(ref["metrics"][key], rel=1e-4), key
  assert multi["metrics"]["test/accuracy"] == pytest.approx(ref["metrics"]["test/accuracy"], abs=1 / 360)
  assert not [d for d in os.listdir(tmp_path) if d not in ("single", "multi")]
