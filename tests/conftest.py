"""Shared test helpers: run an entry point in a subprocess (flags are process-global), quietly."""

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


@pytest.fixture
def digits():
  from tfrobust import data
  return data.load_digits()
