"""`python -m tfrobust.evaluate` against `python -m tfrobust.main --attacks=...`: the same numbers from the
exported SavedModel, from a .npz, under two logical CPU replicas. Bad input: tests/test_evaluate_errors.py."""

import concurrent.futures
import json
import os

import numpy as np
import pytest

from conftest import run_module

# L∞ only: each attack x norm costs a trace (~2 s); L2 is covered by tests/test_robustness.py in-process.
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
      result["metrics"]["test_accuracy"])  # a second path to the clean accuracy: per example, then averaged
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
  assert "pgd    inf" in proc.stdout and "PASS eps0_equals_clean" in proc.stdout  # the printed table
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
