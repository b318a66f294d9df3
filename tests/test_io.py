"""tfrobust.io: every file is written whole or not at all, JSON is JSON-safe, JSON lines are appended whole."""

import json
import math
import os

import numpy as np
import pytest

from tfrobust import io


def test_json_is_clean_and_nothing_but_the_file_is_left(tmp_path):
  path = str(tmp_path / "r.json")
  io.write_json(path, {"a": np.float32(0.5), "b": [np.int64(3), float("nan"), math.inf], "c": (1, 2), 4: None})
  assert json.load(open(path)) == {"a": 0.5, "b": [3, None, None], "c": [1, 2], "4": None}
  assert os.listdir(tmp_path) == ["r.json"]  # the temporary file was renamed into place
  assert open(path).read().endswith("}\n")


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
  path = str(tmp_path / "r.txt")
  io.write_text(path, "old")

  def broken_replace(src, dst):
    raise OSError("disk full")
  monkeypatch.setattr(os, "replace", broken_replace)
  with pytest.raises(OSError, match="disk full"):
    io.write_text(path, "new")
  assert open(path).read() == "old"


def test_jsonl_lines_are_appended_in_order_and_json_safe(tmp_path):
  path = str(tmp_path / "results.jsonl")
  for i in range(3):
    io.append_jsonl(path, {"i": i, "x": np.float64(i) / 2})
  assert [json.loads(line) for line in open(path)] == [{"i": i, "x": i / 2} for i in range(3)]


# A child whose files may not grow past LIMIT bytes (RLIMIT_FSIZE, SIGXFSZ ignored): the kernel writes what fits and
# then fails with EFBIG, the way a full disk or a kill between two write calls cuts a line. A plain
# `open(path, "a").write(line)` leaves the part that fitted behind; append_jsonl must leave nothing.
INTERRUPTED_APPEND = r"""
import resource, signal, sys
from tfrobust import io
path, limit = sys.argv[1], int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
io.append_jsonl(path, {"i": 0})
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
  io.append_jsonl(path, {"i": 1, "pad": "x" * 100_000})
except OSError as e:
  print("interrupted:", e.errno)
"""


def test_an_append_interrupted_mid_line_leaves_no_partial_line(tmp_path):
  from conftest import run_script
  path = str(tmp_path / "results.jsonl")
  proc = run_script(INTERRUPTED_APPEND.replace("sys.argv[1]", repr(path)).replace("int(sys.argv[2])", "4096"))
  assert "interrupted" in proc.stdout, proc.stderr[-2000:]
  text = open(path).read()
  assert text == '{"i": 0}\n'  # the first line whole, nothing of the second


def test_png_is_written_atomically(tmp_path):
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(figsize=(2, 2))
  FigureCanvasAgg(fig)
  fig.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
  path = io.write_png(fig, str(tmp_path / "f.png"), dpi=50)
  assert os.listdir(tmp_path) == ["f.png"] and open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_versions_name_the_libraries_and_the_onednn_choice():
  v = io.versions()
  assert "python" in v and "numpy" in v and "onednn" in v and "onednn_source" in v
