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


def test_jsonl_lines_are_appended_whole(tmp_path):
  path = str(tmp_path / "results.jsonl")
  for i in range(3):
    io.append_jsonl(path, {"i": i, "x": np.float64(i) / 2})
  assert [json.loads(line) for line in open(path)] == [{"i": i, "x": i / 2} for i in range(3)]


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
