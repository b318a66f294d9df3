"""Shared test helpers: run an entry point in a subprocess (flags are process-global), quietly."""

import concurrent.futures
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(module, *args, timeout=300, env=None):
  """Runs `python -m module args...` from the repo root; returns the CompletedProcess (text)."""
  full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, **(env or {}))
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=full_env, capture_output=True,
                        text=True, timeout=timeout)


def start_module(module, *args, env=None, quiet=False):
  """Starts `python -m module args...` in the background (text pipes, or no output with quiet=True)."""
  full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, **(env or {}))
  out = subprocess.DEVNULL if quiet else subprocess.PIPE
  return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=full_env, stdout=out, stderr=out,
                          text=True)


def run_script(code, *, timeout=300, env=None):
  """Runs a Python snippet in a fresh interpreter (for logical-device or multi-process setups)."""
  full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, **(env or {}))
  return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True,
                        timeout=timeout)


def assert_refused(cases, tmp_path, *, workers=3):
  """Each case (module, flags, output flag, what the error line must say) run as a fresh process, a few at once (each
  is mostly TensorFlow's import): exit status 2, exactly one stderr line "error: ..." naming the problem, and nothing
  written where its output flag pointed (tmp_path/out<i>)."""
  def check(i):
    module, args, output_flag, message = cases[i]
    proc = run_module(module, *args, f"{output_flag}={tmp_path / f'out{i}'}", timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (args, proc.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (args, lines)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(f"out{i}")], args
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    list(pool.map(check, range(len(cases))))


def sweep_lines(sweep_dir):
  """Every line of a sweep's results.jsonl, each of which must parse (not the records module's reading rule, which
  skips a torn line: the study never leaves one)."""
  with open(os.path.join(sweep_dir, "results.jsonl")) as f:
    return [json.loads(line) for line in f]


def sweep_keys(sweep_dir):
  return sorted(line["trial_id"] for line in sweep_lines(sweep_dir))


@pytest.fixture
def digits():
  from tfrobust import data
  return data.load_digits()


@pytest.fixture
def float64():
  """Keras in float64 for the test, float32 again after it (the stacked trainer's equivalence tests)."""
  import keras  # pylint: disable=import-outside-toplevel
  keras.config.set_floatx("float64")
  keras.config.set_dtype_policy("float64")  # a policy set (or cached) by earlier tests would keep float32
  yield
  keras.config.set_floatx("float32")
  keras.config.set_dtype_policy("float32")
