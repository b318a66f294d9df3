"""oneDNN is chosen per workload before TensorFlow loads, the user's TF_ENABLE_ONEDNN_OPTS wins, and result.json
records what was chosen."""

import json
import os

from conftest import run_module, run_script

_CHOOSE = r"""
import json, os, sys
from tfrobust import onednn
os.environ.pop("TF_ENABLE_ONEDNN_OPTS", None)
dense = onednn.configure(model="mlp"); dense_env = os.environ["TF_ENABLE_ONEDNN_OPTS"]
os.environ.pop("TF_ENABLE_ONEDNN_OPTS")
conv = onednn.configure(model="lenet"); conv_env = os.environ["TF_ENABLE_ONEDNN_OPTS"]
inherited = onednn.configure(model="mlp")  # as a child process that inherits the environment would see it
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
user = onednn.configure(model="lenet"); user_env = os.environ["TF_ENABLE_ONEDNN_OPTS"]
os.environ.pop("TF_ENABLE_ONEDNN_OPTS")
import tensorflow
late = onednn.configure(model="lenet")
print("RESULT" + json.dumps({"dense": [dense, dense_env], "conv": [conv, conv_env], "user": [user, user_env], "inherited": inherited,
                             "late": [late, "TF_ENABLE_ONEDNN_OPTS" in os.environ]}))
"""


def test_default_per_model_user_setting_wins_and_too_late_is_said():
  proc = run_script(_CHOOSE, env={"TF_ENABLE_ONEDNN_OPTS": ""})  # the script clears it itself
  assert proc.returncode == 0, proc.stderr[-2000:]
  out = json.loads(proc.stdout.split("RESULT", 1)[1])
  assert out["dense"][0]["onednn"] is False and out["dense"][1] == "0"
  assert out["conv"][0]["onednn"] is True and out["conv"][1] == "1"
  assert out["user"][0]["onednn"] is False and out["user"][1] == "0" and "user" in out["user"][0]["onednn_source"]
  assert out["inherited"]["onednn"] is True and "inherited" in out["inherited"]["onednn_source"]
  assert out["late"][0]["onednn"] is None and out["late"][1] is False  # not set once TensorFlow is loaded


def test_result_json_records_the_choice(tmp_path):
  out = str(tmp_path / "run")
  proc = run_module("tfrobust.main", "--model=mlp", "--epochs=1", "--batch_size=256", f"--output_dir={out}",
                    env={"TF_ENABLE_ONEDNN_OPTS": "1"})
  assert proc.returncode == 0, proc.stderr[-2000:]
  versions = json.load(open(os.path.join(out, "result.json")))["versions"]
  assert versions["onednn"] is True and "set by the user" in versions["onednn_source"]
