"""`python -m tfrobust.main` end to end: accuracy, result.json, TensorBoard, export, bad input."""

import glob
import json
import os

import numpy as np
import pytest

from conftest import assert_refused, run_module


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("run") / "demo")
  proc = run_module("tfrobust.main", "--batch_size=256", "--lr=0.05", f"--output_dir={out}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  return out, proc


def test_default_run_reaches_90_percent_on_digits(default_run):
  out, proc = default_run
  result = json.load(open(os.path.join(out, "result.json")))
  assert result["metrics"]["test/accuracy"] >= 0.9
  assert result["diverged"] is False
  assert result["hparams"]["batch_size"] == 256 and result["hparams"]["lr"] == 0.05
  for key in ("train/loss", "train/accuracy", "test/loss", "test/accuracy"):
    assert np.isfinite(result["metrics"][key])
  assert {"train_s", "total_s", "input_teardown_s", "of_which_gc_s"} <= set(result["timings"])
  assert "tensorflow" in json.dumps(result["versions"]) and "keras" in result["versions"]
  assert len(result["history"]) == result["hparams"]["epochs"]
  assert result["steps"] == result["hparams"]["epochs"] * (1437 // 256) == result["history"][-1]["steps"]
  assert result["hparams"]["budget"] == "epochs" and result["hparams"]["max_steps"] == 0
  # one progress line per epoch, with images/s
  assert proc.stdout.count("img/s") == result["hparams"]["epochs"]


def test_progress_without_a_terminal_is_one_plain_line_per_epoch(default_run):
  """stdout is a pipe here (as in a log file): no Progbar redraws, escape sequences or bar characters."""
  _, proc = default_run
  assert "\x1b" not in proc.stdout and "━" not in proc.stdout and "\r" not in proc.stdout
  lines = proc.stdout.strip().splitlines()
  assert [l.split(":")[0] for l in lines[:-1]] == [f"epoch {e}/60" for e in range(1, 61)]
  assert lines[-1].startswith("done: test accuracy")


def test_flags_file_repeats_the_run(default_run):
  out, _ = default_run
  text = open(os.path.join(out, "flags.cfg")).read()
  assert "--batch_size=256" in text and "--lr=0.05" in text


def test_tensorboard_has_scalars_and_hparams(default_run):
  out, _ = default_run
  from tensorboard.backend.event_processing import event_accumulator
  files = glob.glob(os.path.join(out, "tensorboard", "events.*"))
  assert files
  acc = event_accumulator.EventAccumulator(os.path.join(out, "tensorboard"), size_guidance={"tensors": 0})
  acc.Reload()
  tags = set(acc.Tags()["tensors"])
  for tag in ("train/loss", "train/accuracy", "test/loss", "test/accuracy", "train/learning_rate",
              "train/grad_norm", "train/images_per_s", "_hparams_/session_start_info"):
    assert tag in tags, tag
  import numpy as np
  import tensorflow as tf
  history = json.load(open(os.path.join(out, "result.json")))["history"]
  for tag in ("train/loss", "test/accuracy", "train/learning_rate"):  # each epoch's value, at the epoch's number
    got = {e.step: tf.make_ndarray(e.tensor_proto) for e in acc.Tensors(tag)}
    assert got == {h["epoch"]: np.float32(h[tag]) for h in history}, tag


def test_export_reproduces_test_accuracy_exactly(default_run):
  out, _ = default_run
  import tensorflow as tf
  from tfrobust import data
  result = json.load(open(os.path.join(out, "result.json")))
  loaded = tf.saved_model.load(os.path.join(out, "saved_model"))
  sig = loaded.signatures["serving_default"]
  (name, spec), = sig.structured_input_signature[1].items()
  assert name == "images" and spec.shape.as_list() == [None, 8, 8, 1]
  assert set(sig.structured_outputs) == {"logits", "probabilities"}
  ds = data.load_digits()
  outputs = sig(images=tf.constant(ds.x_test))
  acc = float(np.mean(np.argmax(outputs["logits"].numpy(), -1) == ds.y_test))
  assert acc == result["metrics"]["test/accuracy"]
  np.testing.assert_allclose(outputs["probabilities"].numpy().sum(-1), 1.0, rtol=1e-5)


def test_rerun_of_finished_run_does_nothing(default_run):
  out, _ = default_run
  before = os.path.getmtime(os.path.join(out, "result.json"))
  proc = run_module("tfrobust.main", "--batch_size=256", "--lr=0.05", f"--output_dir={out}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert os.path.getmtime(os.path.join(out, "result.json")) == before


_BAD = [
    (["--lr=0"], "--lr"), (["--lr=-1"], "--lr"), (["--lr=nan"], "--lr"), (["--batch_size=0"], "--batch_size"),
    (["--batch_size=5000"], "--batch_size"), (["--epochs=0"], "--epochs"), (["--momentum=1"], "--momentum"),
    (["--momentum=-0.1"], "--momentum"), (["--weight_decay=-1"], "--weight_decay"),
    (["--dataset=nosuchset"], "--dataset"), (["--model=nosuchmodel"], "--model"),
    (["--lr_schedule=wavy"], "--lr_schedule"), (["--lr_scaling=cubic"], "--lr_scaling"),
    (["--dataset=cifar10", "--data_dir=/nonexistent"], "--dataset"),
    (["--flagfile=/nonexistent/flags.cfg"], "flags.cfg"),
]


@pytest.mark.parametrize("args,flag", _BAD, ids=[" ".join(a) for a, _ in _BAD])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, args, flag):
  out = tmp_path / "out"
  extra = [] if flag == "--epochs" else ["--epochs=1"]
  proc = run_module("tfrobust.main", *args, f"--output_dir={out}", *extra)
  lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert len(lines) == 1 and flag in lines[0], lines
  assert "Traceback" not in proc.stderr
  assert not out.exists()


def test_bad_evaluator_flags_are_one_line_exit_2_nothing_written(tmp_path):
  """Bad robustness flags given to a training run (each kind of input once; each flag's own validation is tested
  in-process): refused before training, side by side in three processes."""
  cases = [  # (flags, what the error line must say)
      (["--attacks=fgsm", "--norms=inf,3"], "unknown norm '3'"),
      (["--attacks=pgd", "--pgd_steps=0"], "--pgd_steps=0: must be > 0"),
      (["--eval_examples=100"], "--eval_examples: needs --attacks"),
  ]
  assert_refused([("tfrobust.main", args, "--output_dir", message) for args, message in cases], tmp_path)


@pytest.mark.parametrize("under", [False, True], ids=["the file", "under the file"])
def test_output_dir_that_is_a_file_is_refused(tmp_path, under):
  path = tmp_path / "taken"
  path.write_text("not a run\n")
  out = path / "run" if under else path
  proc = run_module("tfrobust.main", "--epochs=1", f"--output_dir={out}")
  lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
  assert proc.returncode == 2 and len(lines) == 1 and "--output_dir" in lines[0], proc.stderr[-2000:]
  assert "not a directory" in lines[0] and "Traceback" not in proc.stderr
  assert path.read_text() == "not a run\n" and sorted(os.listdir(tmp_path)) == ["taken"]


def test_output_dir_with_other_hparams_is_refused(default_run):
  out, _ = default_run
  before = sorted(os.listdir(out))
  proc = run_module("tfrobust.main", "--batch_size=128", f"--output_dir={out}")
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1 and "different hyperparameters" in lines[0], proc.stderr
  assert "batch_size" in lines[0]
  assert sorted(os.listdir(out)) == before


def test_finished_run_asked_for_other_evaluations_is_refused(default_run):
  """The evaluator settings are part of the run: the finished run (no attacks) must not be handed back as if
  it held the robustness section that --attacks asks for."""
  out, _ = default_run
  before = open(os.path.join(out, "result.json")).read()
  proc = run_module("tfrobust.main", "--batch_size=256", "--lr=0.05", "--attacks=pgd", f"--output_dir={out}")
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1 and "evaluators" in lines[0], proc.stderr
  assert open(os.path.join(out, "result.json")).read() == before
