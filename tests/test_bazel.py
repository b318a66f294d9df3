"""The Bazel BUILD file stays honest without Bazel (which cannot run offline here): every module and test file
(in every folder) is covered by a target, every target's sources exist, every `python -m` entry point is a
binary, and buildifier accepts the file where it is installed."""

import ast
import glob
import os
import shutil
import subprocess

import pytest

from conftest import ROOT


def _targets():
  """(rule, name, srcs) of every rule call in BUILD; Starlark's call syntax parses as Python."""
  tree = ast.parse(open(os.path.join(ROOT, "BUILD")).read())
  out = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id != "load":
      kwargs = {k.arg: k.value for k in node.keywords}
      name = ast.literal_eval(kwargs["name"]) if "name" in kwargs else None
      srcs = ast.literal_eval(kwargs["srcs"]) if isinstance(kwargs.get("srcs"), ast.List) else []
      out.append((node.func.id, name, srcs))
  return out


def _py_files(pattern):
  return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern), recursive=True))


def test_every_module_is_in_a_target_and_every_source_exists():
  covered = {src for _, _, srcs in _targets() for src in srcs}
  modules = [p for p in _py_files("tfrobust/**/*.py")]
  assert modules, "no modules found"
  assert [m for m in modules if m not in covered] == []
  assert [s for s in covered if not os.path.exists(os.path.join(ROOT, s))] == []


def test_one_py_test_per_test_file_and_entry_points_are_binaries():
  targets = _targets()
  tested = [[s for s in srcs if os.path.basename(s).startswith("test_")] for rule, _, srcs in targets
            if rule == "py_test"]
  assert all(len(t) == 1 for t in tested), "one test file per py_test"
  assert sorted(t[0] for t in tested) == _py_files("tests/**/test_*.py")
  binaries = {name: srcs for rule, name, srcs in targets if rule == "py_binary"}
  assert set(binaries) >= {"main", "sweep", "report", "evaluate", "hessian"}
  assert binaries["report"] == ["tfrobust/report/__main__.py"]  # `python -m tfrobust.report` runs the package
  assert any(rule in ("cc_binary", "cc_library") for rule, _, _ in targets), "the custom op's C++ library"


def _buildifier():
  for candidate in (os.environ.get("BUILDIFIER"), shutil.which("buildifier"),
                    os.path.join(ROOT, ".tools", "node_modules", "@bazel", "buildifier-linux_x64", "buildifier")):
    if candidate and os.path.exists(candidate):
      return candidate
  return None


def test_buildifier_lint():
  tool = _buildifier()
  if tool is None:
    pytest.skip("buildifier not installed (make test installs it from npm: @bazel/buildifier-linux_x64)")
  proc = subprocess.run([tool, "--mode=check", "--lint=warn", "BUILD"], cwd=ROOT, capture_output=True, text=True)
  assert proc.returncode == 0, proc.stdout + proc.stderr
