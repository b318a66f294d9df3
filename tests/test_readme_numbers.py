"""Every number README.md quotes agrees with where it comes from: runtimes with docs/benchmarks.md (which names the
CPU, date and command of each), test-set sizes with the committed reports and flag files, the reproducibility
intervals with docs/benchmarks.md and the committed verdicts, the line count with what a 30-second read allows.
The verdict table itself is checked by tests/report/test_readme_results.py."""

import json
import os
import re

import pytest

from conftest import ROOT

MAX_LINES = 150


def _read(*path):
  with open(os.path.join(ROOT, *path), encoding="utf-8") as f:
    return f.read()


README = _read("README.md")
_GENERATED = re.compile(r"<!-- verdicts:start -->.*?<!-- verdicts:end -->", re.S)
PROSE = " ".join(_GENERATED.sub("", README).split())  # line breaks and indents as single spaces
# A duration as README writes it: "102.7 s", "13 min 5 s", "about 5 min", "about a minute".
DURATION = re.compile(r"\b\d+(?:\.\d+)? min(?: \d+(?:\.\d+)? s)?\b|\b\d+(?:\.\d+)? s\b")


def test_readme_is_short():
  assert README.count("\n") <= MAX_LINES


def test_every_runtime_the_readme_quotes_is_in_the_benchmarks_page():
  bench = _read("docs", "benchmarks.md")
  quoted = DURATION.findall(PROSE)
  assert "102.7 s" in quoted  # the demo's runtime is quoted at all
  assert [q for q in quoted if q not in bench] == []


def test_the_cpu_named_with_the_demo_runtime_is_the_benchmarks_page_s():
  bench_row = next(line for line in _read("docs", "benchmarks.md").splitlines() if line.startswith("| `make demo`"))
  cpu = re.search(r"2-core (Intel Xeon|AMD EPYC)", PROSE.split("102.7 s", 1)[1][:60]).group(0)
  assert cpu in bench_row and "102.7 s" in bench_row


@pytest.mark.parametrize("study,n", [("digits_study", 360), ("mnist5k_study", 1000)])
def test_test_set_sizes_match_the_committed_reports(study, n):
  report = _read("docs", "results", study, "report.md")
  assert f"shared noise of the {n} test examples" in report
  if study == "digits_study":
    assert f"{n} test images" in PROSE and f"{100 / n:.2f} points" in PROSE


def test_attacked_examples_match_the_flag_file():
  assert "--eval_examples=500" in _read("flags", "mnist5k_study.cfg")
  assert "mnist5k studies attack 500 (0.2 points)" in PROSE


def test_reproducibility_intervals_match_benchmarks_and_the_committed_verdicts():
  rows = json.loads(_read("docs", "results", "digits_study", "verdicts.json"))
  eig = next(r for r in rows if (r["claim"], r["component"], r["control"]) == ("C4", "eig", "all"))
  committed = f"[{eig['ci'][0]:+.3f}, {eig['ci'][1]:+.3f}]"
  bench = _read("docs", "benchmarks.md")
  text = PROSE
  assert f"interval is {committed} ({eig['verdict']})" in text and committed in bench
  other = re.search(r"gave (\[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]) \(inconclusive\)", text).group(1)
  assert other in bench
