"""The op build (ops/build.py): no compiler means None and no file, never an exception; with nvcc on PATH the CUDA
kernel and its standalone harness compile (running them needs a GPU: docs/ops.md)."""

import os
import shutil

import pytest

from tfrobust.ops import build


def test_build_without_a_compiler_returns_none(monkeypatch, tmp_path):
  monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
  assert build.build(verbose=False, output=str(tmp_path / "x.so"), force=True) is None
  assert not (tmp_path / "x.so").exists()


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH: the CUDA kernel is not compiled")
def test_cuda_kernel_and_harness_compile(monkeypatch, tmp_path):
  # One architecture keeps it to seconds; running it needs a GPU (docs/ops.md:
  # python -m tfrobust.build_ops --cuda_check --run_harness).
  monkeypatch.setenv("TFROBUST_CUDA_ARCHS", "90")
  assert build.cuda_check(verbose=False, output=str(tmp_path / "harness")) is not None
  assert os.access(tmp_path / "harness", os.X_OK)
