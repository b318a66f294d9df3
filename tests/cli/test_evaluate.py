"""`python -m tfrobust.evaluate` and `python -m tfrobust.hessian` (cli/evaluate.py): the same numbers as
`python -m tfrobust.main --attacks=...` from the exported SavedModel, from a .npz, under two logical CPU replicas;
the Hessian command against the Python API (tfrobust.evaluators.hessian.evaluate.top_eigenvalues) on the same
model and data; bad input one line on stderr, exit status 2, nothing written (the `tfrobust.main` cases:
test_main.py). Each command is a fresh process (~4 s of TensorFlow import): independent ones run side by side."""

import concurrent.futures
import json
import os

import numpy as np
import pytest

from conftest import assert_refused, run_module

# L∞ only: each attack x norm costs a trace (~2 s); L2 is covered in-process by tests/evaluators/robustness/.
ATTACK_FLAGS = ["--attacks=fgsm,pgd", "--norms=inf", "--pgd_steps=5", "--eval_examples=100"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("run") / "r")
  proc = run_module("tfrobust.main", "--epochs=3", *ATTACK_FLAGS, f"--output_dir={out}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  return out, json.load(open(os.path.join(out, "result.json")))


def test_main_writes_the_robustness_section_and_per_example_outcomes(run):
  out, result = run
  rows = result["robustness"]["accuracy"]
  assert len(rows) == 2 * 10  # attacks x the digits L∞ grid (ε = 0 included)
  assert {"attack", "norm", "eps", "eps_255", "steps", "step_size", "restarts", "accuracy", "examples"} == set(rows[0])
  assert {r["examples"] for r in rows} == {100}
  assert set(result["robustness"]["summary"]) == {"fgsm_linf", "pgd_linf"}
  assert {"eps0_equals_clean", "monotone_in_eps", "low_accuracy_at_max_eps", "pgd_not_weaker_than_fgsm",
          "zero_input_gradients", "noise_weaker_than_attack"} == set(result["robustness"]["checks"])
  assert result["robustness"]["config"]["pgd_steps"] == 5 and "robustness_s" in result["timings"]
  assert os.path.getsize(os.path.join(out, "robustness.png")) > 1000
  assert result["data"] == {"dataset": "digits", "num_classes": 10, "train_examples": 1437, "test_examples": 360}
  from tfrobust.records import run as run_records
  examples = run_records.read_examples(out)
  assert examples.clean.shape == (360,) and examples.clean.mean() == pytest.approx(
      result["metrics"]["test/accuracy"])  # a second path to the clean accuracy: per example, then averaged
  for (attack, norm), curve in examples.curves.items():
    want = [r["accuracy"] for r in rows if (r["attack"], r["norm"]) == (attack, norm)]
    assert curve.correct.shape == (10, 100) and curve.correct.mean(axis=1) == pytest.approx(want)


def test_evaluate_reproduces_result_json_from_dataset_npz_and_two_replicas(run, tmp_path):
  out, result = run
  from tfrobust import data
  ds = data.load_digits()
  npz = str(tmp_path / "digits.npz")
  np.savez(npz, x=ds.x_test[:100, ..., 0], y=ds.y_test[:100])  # [N, H, W]: the channel axis is added
  calls = {"dataset": ["--dataset=digits"], "npz_2_replicas": [f"--npz={npz}", "--num_cpu_devices=2"]}
  def evaluate(name):
    output = str(tmp_path / name)
    proc = run_module("tfrobust.evaluate", f"--saved_model={out}/saved_model", *calls[name], *ATTACK_FLAGS,
                      f"--output={output}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.load(open(os.path.join(output, "evaluation.json")))
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    (proc, by_name), (_, by_npz) = pool.map(evaluate, calls)
  assert by_name["robustness"] == result["robustness"]
  assert by_npz["robustness"]["accuracy"] == result["robustness"]["accuracy"] and by_npz["num_replicas"] == 2
  rows = [line.split() for line in proc.stdout.splitlines()]
  assert ["pgd", "inf"] in [row[:2] for row in rows] and "PASS eps0_equals_clean" in proc.stdout  # the printed table
  assert {"evaluation.json", "robustness.png", "examples.npz"} <= set(os.listdir(tmp_path / "dataset"))


def test_one_eval_only_cli_measures_robustness_and_the_hessian_together(run, tmp_path):
  """`tfrobust.evaluate` and `tfrobust.hessian` are one CLI: --hessian_top_k adds the Hessian section to an evaluate
  run, and it equals what `python -m tfrobust.hessian` measures on the same model."""
  out, result = run
  both = str(tmp_path / "both")
  hessian_flags = ["--hessian_top_k=1", "--hessian_examples=200", "--hessian_tol=1e-4"]
  proc = run_module("tfrobust.evaluate", f"--saved_model={out}/saved_model", "--dataset=digits", "--attacks=fgsm",
                    "--norms=inf", "--eval_examples=100", *hessian_flags, f"--output={both}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  record = json.load(open(os.path.join(both, "evaluation.json")))
  assert record["robustness"]["accuracy"] == [r for r in result["robustness"]["accuracy"] if r["attack"] == "fgsm"]
  alone = run_module("tfrobust.hessian", f"--saved_model={out}/saved_model", "--dataset=digits", *hessian_flags)
  assert alone.returncode == 0, alone.stderr[-3000:]
  np.testing.assert_allclose(json.loads(alone.stdout)["hessian"]["top_eigenvalues"],
                             record["hessian"]["top_eigenvalues"], rtol=1e-6)


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
  # One case per kind of bad input; every flag's own validation is tested in-process (tests/evaluators/).
  cases = [  # (flags, what the error line must say)
      ([model, "--dataset=digits", "--eps=0.1,-0.01"], "--eps=0.1,-0.01: every ε must"),
      ([model, "--dataset=digits", "--eps_l2=nan"], "--eps_l2=nan: every ε must be a finite"),
      ([model, "--dataset=digits", "--attacks=fgsm,cw"], "unknown attack 'cw'"),
      ([model, "--dataset=digits", "--pgd_restarts=0"], "--pgd_restarts=0: must be > 0"),
      ([f"--saved_model={out}", "--dataset=digits"], "not a readable SavedModel"),
      ([f"--saved_model={_no_signature_model(str(tmp_path / 'nosig'))}", "--dataset=digits"],
       "has no 'serving_default' signature"),
      ([model, "--dataset=mnist5k"], "do not fit the model's input shape (8, 8, 1)"),
      ([model, f"--npz={npz}"], "on the [0, 1] scale"),
  ]
  assert_refused([("tfrobust.evaluate", args, "--output", message) for args, message in cases], tmp_path)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  """A tiny CNN on 4x4 images (210 weights) exported as a SavedModel, and 64 digits pooled to 4x4 as an .npz."""
  import keras
  from keras import layers
  from tfrobust import data, export
  ds = data.load_dataset("digits")
  rng = np.random.default_rng(0)
  x = ds.x_train[:64].reshape(64, 4, 2, 4, 2, 1).mean(axis=(2, 4))  # 2x2 average pooling: 4x4 images.
  x = np.clip(0.9 * x + 0.1 * rng.uniform(size=x.shape), 0, 1).astype(np.float32)  # No max-pool ties.
  keras.utils.set_random_seed(6)
  inputs = keras.Input((4, 4, 1))
  hidden = layers.MaxPooling2D(2)(layers.Conv2D(4, 3, padding="same", activation="relu")(inputs))
  model = keras.Model(inputs, layers.Dense(10)(layers.Flatten()(hidden)))
  tmp = tmp_path_factory.mktemp("cli")
  export.export_model(model, str(tmp / "sm"))
  np.savez(tmp / "d.npz", x=x, y=ds.y_train[:64])
  return model, (x, ds.y_train[:64]), [f"--saved_model={tmp / 'sm'}", f"--npz={tmp / 'd.npz'}"]


@pytest.mark.parametrize("flag,message", [
    ("--hessian_tol=0", "--hessian_tol=0.0: must be a finite number > 0"),  # Checked before TF loads the model.
    ("--hessian_examples=65", "--hessian_examples=65: larger than the training set (64 examples)")])
def test_hessian_bad_input_is_one_line_exit_2_nothing_written(saved, tmp_path, flag, message):
  """Two runs of `python -m tfrobust.hessian` (one per check site); every other bad value goes through the same
  HessianConfig.validate / validate_against, tested in-process (tests/evaluators/hessian/test_config.py)."""
  p = run_module("tfrobust.hessian", *saved[2], flag, f"--output={tmp_path / 'out'}", timeout=240)
  assert p.returncode == 2 and p.stderr.strip().splitlines() == [f"error: {message}"], p.stderr
  assert not (tmp_path / "out").exists()


def test_hessian_on_a_savedmodel(saved, tmp_path):
  from tfrobust import data
  from tfrobust.evaluators.hessian import evaluate as hessian
  model, (x, y), args = saved
  p = run_module("tfrobust.hessian", *args, "--hessian_top_k=2", "--hessian_tol=1e-6", "--hessian_density",
                 "--hessian_max_iter=40", f"--output={tmp_path / 'out'}", timeout=240)
  assert p.returncode == 0, p.stderr[-2000:]
  got = json.loads((tmp_path / "out" / "evaluation.json").read_text())["hessian"]
  printed = json.loads(p.stdout.rsplit("\n-> ", 1)[0])  # the evaluator's text, then the file written
  assert printed["hessian"]["top_eigenvalues"] == got["top_eigenvalues"]
  ds = data.Dataset("npz", x, y, x[:0], y[:0], 10)
  want = hessian.top_eigenvalues(model, ds, k=2, tol=1e-6)  # The Python API on the same (whole) set.
  np.testing.assert_allclose(got["top_eigenvalues"], want.eigenvalues, rtol=1e-4)
  assert got["examples"] == 64 and got["converged"] and (tmp_path / "out" / "hessian_density.png").exists()
