"""Bad input to `python -m tfrobust.evaluate` and to `tfrobust.main --attacks=...`: one line on stderr, exit status
2, nothing written. (Each case is a fresh process, ~4 s of TensorFlow import, so this file is apart.)"""

import concurrent.futures
import os

import numpy as np
import pytest

from conftest import run_module


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A tiny exported model (1 epoch, no attacks)."""
  out = str(tmp_path_factory.mktemp("run") / "r")
  proc = run_module("tfrobust.main", "--epochs=1", f"--output_dir={out}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  return out, None


def _no_signature_model(path):
  import tensorflow as tf
  module = tf.Module()
  module.v = tf.Variable(1.0)
  tf.saved_model.save(module, path)
  return path


def test_bad_input_is_one_line_exit_2_nothing_written(run, tmp_path):
  out, _ = run
  model = f"--saved_model={out}/saved_model"
  npz = str(tmp_path / "bright.npz")
  np.savez(npz, x=np.full((3, 8, 8), 2.0, np.float32), y=np.zeros(3, np.int64))
  # One case per kind of bad input; every flag's own validation is tested in-process (tests/test_robustness.py).
  cases = [  # (module, flags, what the error line must say)
      ("tfrobust.evaluate", [model, "--dataset=digits", "--eps=0.1,-0.01"], "--eps=0.1,-0.01: every ε must"),
      ("tfrobust.evaluate", [model, "--dataset=digits", "--eps_l2=nan"], "--eps_l2=nan: every ε must be a finite"),
      ("tfrobust.evaluate", [model, "--dataset=digits", "--attacks=fgsm,cw"], "unknown attack 'cw'"),
      ("tfrobust.evaluate", [model, "--dataset=digits", "--pgd_restarts=0"], "--pgd_restarts=0: must be > 0"),
      ("tfrobust.evaluate", [f"--saved_model={out}", "--dataset=digits"], "not a readable SavedModel"),
      ("tfrobust.evaluate", [f"--saved_model={_no_signature_model(str(tmp_path / 'nosig'))}", "--dataset=digits"],
       "has no 'serving_default' signature"),
      ("tfrobust.evaluate", [model, "--dataset=mnist5k"], "do not fit the model's input shape (8, 8, 1)"),
      ("tfrobust.evaluate", [model, f"--npz={npz}"], "on the [0, 1] scale"),
      ("tfrobust.main", ["--attacks=fgsm", "--norms=inf,3"], "unknown norm '3'"),
      ("tfrobust.main", ["--attacks=pgd", "--pgd_steps=0"], "--pgd_steps=0: must be > 0"),
      ("tfrobust.main", ["--eval_examples=100"], "--eval_examples: needs --attacks"),
  ]
  def check(i):
    module, args, message = cases[i]
    target = str(tmp_path / f"out{i}")
    where = f"--output={target}" if module == "tfrobust.evaluate" else f"--output_dir={target}"
    proc = run_module(module, *args, where, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (args, proc.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (args, lines)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(f"out{i}")], args
  with concurrent.futures.ThreadPoolExecutor(3) as pool:
    list(pool.map(check, range(len(cases))))
