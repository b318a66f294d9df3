"""The layout's rules, read from the source with ast (no TensorFlow): imports run down the layers (LAYERS, the
order CONTRIBUTING.md states) and never in a circle, the library rooms read no flags, evaluators are found through
the one registry and a broken one fails loudly, configs, records and the report stay light, modules stay small,
every `python -m` entry point answers."""

import ast
import glob
import os
import subprocess
import sys

import pytest

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "tfrobust")
LIBRARY_ROOMS = ("tfrobust.train", "tfrobust.evaluators", "tfrobust.experiment", "tfrobust.study", "tfrobust.report",
                 "tfrobust.records")
# The layers, lowest first: a module may import its own room and any room of a lower layer, nothing else. Rooms of
# one layer stand side by side and never import each other (training and the evaluators; the study and the
# report). Every `python -m` module (tfrobust/X.py shims and __main__.py files) is an entry point, the top.
# CONTRIBUTING.md states the same order.
LAYERS = (
    ("tfrobust", "tfrobust.errors", "tfrobust.onednn"),
    ("tfrobust.config", "tfrobust.io", "tfrobust.losses"),
    ("tfrobust.records", "tfrobust.data", "tfrobust.models", "tfrobust.distribute", "tfrobust.export",
     "tfrobust.ops"),
    ("tfrobust.train", "tfrobust.evaluators"),
    ("tfrobust.experiment",),
    ("tfrobust.study", "tfrobust.report"),
    ("tfrobust.cli",),
    ("entry points",),
)
MAX_LINES = 320
ENTRY_POINTS = ("tfrobust.main", "tfrobust.sweep", "tfrobust.evaluate", "tfrobust.hessian", "tfrobust.report",
                "tfrobust.readme_results", "tfrobust.build_ops", "tfrobust.calibrate")


def _module_name(path):
  rel = os.path.relpath(path, ROOT)[:-len(".py")].split(os.sep)
  return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


MODULES = {_module_name(p): p for p in glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True)}


def _imports(name):
  """Every module a module imports, at the top or inside a function: (tfrobust modules, other top-level names)."""
  path = MODULES[name]
  ours, others = set(), set()

  def add(target):
    if target.split(".")[0] == "tfrobust":
      while target not in MODULES and "." in target:  # `from tfrobust.x import NAME`: NAME is no module
        target = target.rsplit(".", 1)[0]
      ours.add(target)
    else:
      others.add(target)

  for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
    if isinstance(node, ast.Import):
      for alias in node.names:
        add(alias.name)
    elif isinstance(node, ast.ImportFrom):
      assert not node.level, f"{name}: relative import (tfrobust imports absolutely)"
      base = node.module
      for alias in node.names:
        add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
        others.update([f"{base}.{alias.name}"] if not base.startswith("tfrobust") else [])
  ours.discard(name)
  return ours, others


GRAPH = {name: _imports(name)[0] for name in MODULES}


def _closure(name):
  """The tfrobust modules that importing `name` can load: its imports, theirs, and the packages around them."""
  seen, todo = set(), [name]
  while todo:
    m = todo.pop()
    for target in GRAPH.get(m, ()):
      parts = target.split(".")
      for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
        parent = ".".join(parts[:i])
        if parent in MODULES and parent not in seen:
          seen.add(parent)
          todo.append(parent)
  return seen


def test_no_import_circles():
  """Depth-first search of the explicit imports (package __init__s that import their own submodules aside)."""
  state, cycles = {}, []

  def visit(m, stack):
    state[m] = "open"
    for target in sorted(GRAPH[m]):
      if state.get(target) == "open":
        cycles.append(stack[stack.index(target):] + [target])
      elif target not in state:
        visit(target, stack + [target])
    state[m] = "done"

  for m in sorted(GRAPH):
    if m not in state:
      visit(m, [m])
  assert cycles == []


def _room(name):
  """(layer index, room) of a module: the longest room name that contains it."""
  if name.endswith(".__main__") or name in ENTRY_POINTS:
    return len(LAYERS) - 1, "entry points"
  best = None
  for i, rooms in enumerate(LAYERS):
    for room in rooms:
      if (name == room or name.startswith(room + ".")) and (best is None or len(room) > len(best[1])):
        best = (i, room)
  assert best is not None, f"{name}: in no layer of LAYERS (add it there and to CONTRIBUTING.md)"
  return best


def test_imports_run_down_the_layers():
  bad = []
  for name in sorted(MODULES):
    layer, room = _room(name)
    for target in sorted(GRAPH[name]):
      t_layer, t_room = _room(target)
      if t_room != room and t_layer >= layer and t_room != "tfrobust":
        bad.append(f"{name} ({room}) imports {target} ({t_room})")
  assert bad == []


def test_the_layers_are_the_ones_contributing_states():
  text = open(os.path.join(ROOT, "CONTRIBUTING.md"), encoding="utf-8").read()
  for rooms in LAYERS[:-1]:
    line = " · ".join(f"`{r.replace('tfrobust.', '')}`" for r in rooms)
    assert line in text, f"CONTRIBUTING.md should list the layer {line}"


def test_library_rooms_read_no_flags_and_import_no_cli():
  """Flags belong to tfrobust/cli/ alone. `__main__.py` files are entry points (like tfrobust/main.py), not library."""
  bad = {}
  for name in MODULES:
    if not name.startswith(LIBRARY_ROOMS) or name.endswith(".__main__"):
      continue
    reached = _closure(name) | {name}
    why = [m for m in sorted(reached) if m == "tfrobust.cli" or m.startswith("tfrobust.cli.")]
    why += [f"{m} imports absl.flags" for m in sorted(reached)
            if any(o == "absl.flags" or o.startswith("absl.flags.") for o in _imports(m)[1])]
    if why:
      bad[name] = why
  assert bad == {}


def test_configs_records_and_report_load_without_tensorflow_or_absl():
  """Every frozen config is refused or accepted before anything heavy loads; records and the report run anywhere."""
  configs = ["tfrobust.config", "tfrobust.study.grid"] + [m for m in MODULES if m.startswith("tfrobust.evaluators.")
                                                            and m.endswith(".config")] + ["tfrobust.evaluators"]
  configs += [m for m in MODULES if m.startswith(("tfrobust.records", "tfrobust.report"))
              and not m.endswith("__main__")]
  heavy = ("tensorflow", "keras", "absl", "cleverhans", "keras_tuner", "matplotlib")
  drawing = ("tfrobust.report.figures", "tfrobust.report.build")  # the report draws with matplotlib, TF-free
  found = {m: sorted(o for r in _closure(m) | {m} for o in _imports(r)[1] if o.split(".")[0] in heavy
                     and not (o.startswith("matplotlib") and r in drawing))
           for m in configs}
  assert {m: f for m, f in found.items() if f} == {}


def test_modules_stay_small():
  long = {os.path.relpath(p, ROOT): n for p in MODULES.values()
          if (n := sum(1 for _ in open(p, encoding="utf-8"))) > MAX_LINES}
  assert long == {}


def test_entry_point_modules_are_thin():
  """`python -m tfrobust.X` modules only hand over to tfrobust/cli/ (so the CLI code has one home)."""
  for name in [m for m in ENTRY_POINTS if m != "tfrobust.report"] + ["tfrobust.report.__main__"]:
    tree = ast.parse(open(MODULES[name], encoding="utf-8").read())
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert len(body) == 1 and isinstance(body[0], ast.If), name  # `if __name__ == "__main__": ...`
    assert GRAPH[name] <= {m for m in MODULES if m.startswith("tfrobust.cli")}, name


# ---------------------------------------------------------------------------------------------- the registry

def _defines(name, *functions):
  tree = ast.parse(open(MODULES[name], encoding="utf-8").read())
  defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
  defined |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
  return [f for f in functions if f not in defined]


def test_every_evaluator_is_registered_and_complete():
  from tfrobust import config, evaluators
  packages = {m.split(".")[2] for m in MODULES if m.count(".") >= 3 and m.startswith("tfrobust.evaluators.")}
  assert set(evaluators.names()) == packages
  for e in evaluators.REGISTRY:
    assert e.config_class.__module__ == f"tfrobust.evaluators.{e.name}.config"
    assert _defines(f"tfrobust.evaluators.{e.name}.evaluate", "evaluate") == [], e.name
    assert _defines(f"tfrobust.cli.flags.{e.name}", "define_flags", "config_from_flags") == [], e.name
    e.config_class().validate()  # the defaults are valid
  # ExperimentConfig names no evaluator itself: the registry is the one list.
  fields = [f.name for f in config.ExperimentConfig.__dataclass_fields__.values()]
  assert fields[:2] == ["train", "evaluators"] and not set(fields) & set(evaluators.names())
  with pytest.raises(ValueError, match="unknown evaluator 'curvature'"):
    evaluators.sections(config.ExperimentConfig(evaluators={"curvature": object()}))
  with pytest.raises(ValueError, match="expected a HessianConfig"):
    evaluators.sections(config.ExperimentConfig(evaluators={"hessian": evaluators.get("robustness").config_class()}))


BREAK = r"""
import importlib.abc, runpy, sys
BROKEN = sys.argv[1]
class Broken(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name == BROKEN:
      raise ImportError(f"{name} is broken on purpose")
sys.meta_path.insert(0, Broken())
sys.argv = [sys.argv[2], "--helpfull"]
runpy.run_module(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("broken,entry", [("tfrobust.cli.flags.hessian", "tfrobust.main"),
                                          ("tfrobust.evaluators.robustness.config", "tfrobust.sweep"),
                                          ("tfrobust.cli.flags.robustness", "tfrobust.evaluate")])
def test_a_broken_evaluator_fails_loudly(broken, entry):
  """An evaluator whose module cannot be imported stops the entry point with that ImportError; it is never left
  out quietly with its flags (what a try/except ImportError around the evaluators used to do)."""
  proc = subprocess.run([sys.executable, "-c", BREAK, broken, entry], cwd=ROOT, capture_output=True, text=True,
                        timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
  assert proc.returncode != 0
  assert f"ImportError: {broken} is broken on purpose" in proc.stderr, proc.stderr[-2000:]


def test_a_broken_evaluator_fails_the_run_not_just_its_flags(monkeypatch):
  import importlib

  from tfrobust import evaluators
  real = importlib.import_module

  def fake(name, *args):
    if name == "tfrobust.evaluators.hessian.evaluate":
      raise ImportError("broken on purpose")
    return real(name, *args)
  monkeypatch.setattr(importlib, "import_module", fake)
  with pytest.raises(ImportError, match="broken on purpose"):
    evaluators.get("hessian").evaluate(None, None, None)


# ---------------------------------------------------------------------------------------------- entry points

@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_every_entry_point_answers(module):
  """`python -m tfrobust.X --helpfull` from a fresh process: the commands of the README, the Makefile and the flag
  files resolve to working modules, with every flag they name (absl exits 1 after printing help)."""
  proc = subprocess.run([sys.executable, "-m", module, "--helpfull"], cwd=ROOT, capture_output=True, text=True,
                        timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
  assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-2000:]
  assert "usage" in proc.stdout.lower() or "python -m" in proc.stdout
  if module in ("tfrobust.main", "tfrobust.sweep"):
    assert "--eps" in proc.stdout and "--hessian_top_k" in proc.stdout and "--batch_size" in proc.stdout
  if module == "tfrobust.sweep":
    assert "--batch_sizes" in proc.stdout and "--sweep_dir" in proc.stdout
  if module in ("tfrobust.evaluate", "tfrobust.hessian"):
    assert "--saved_model" in proc.stdout and "--attacks" in proc.stdout and "--hessian_top_k" in proc.stdout
