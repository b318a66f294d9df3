"""README.md quotes the committed study reports (docs/results/*/summary.md) verbatim, and
tfrobust.readme_results keeps it so: replace, check, and refuse unpaired markers."""

import os

import pytest

from conftest import ROOT, run_module
from tfrobust.errors import UsageError
from tfrobust.report import readme_results as rr

README = """# Title

Text before.

<!-- results:digits:start -->
old numbers
<!-- results:digits:end -->

Text after.
"""


def test_readme_quotes_every_committed_summary():
  """Fails when a docs/results/NAME/summary.md differs from README.md's block NAME, when it has no block, or
  when README.md has a block without a committed summary."""
  with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  assert rr.problems(readme, rr.summaries(os.path.join(ROOT, "docs", "results"))) == []


def test_replace_then_check():
  sums = {"digits": "| a | b |\n|---|---|\n| 1 | 2 |\n"}
  assert rr.problems(README, sums) == ["README.md block results:digits differs from docs/results/digits/summary.md"]
  new = rr.replace(README, sums)
  assert "old numbers" not in new and "| 1 | 2 |" in new and new.endswith("Text after.\n")
  assert "<!-- results:digits:start -->\n| a | b |" in new and "| 1 | 2 |\n<!-- results:digits:end -->" in new
  assert rr.problems(new, sums) == [] and rr.replace(new, sums) == new
  assert rr.problems(new, {}) == ["README.md block results:digits has no docs/results/digits/summary.md"]
  with pytest.raises(UsageError, match="no <!-- results:cifar:start -->"):
    rr.replace(new, {**sums, "cifar": "x\n"})


@pytest.mark.parametrize("text,match", [
    ("<!-- results:a:start -->\n", "without an end"),
    ("<!-- results:a:end -->\n", "without a start"),
    ("<!-- results:a:start --><!-- results:a:end --><!-- results:a:start --><!-- results:a:end -->", "twice"),
])
def test_unpaired_markers_are_refused(text, match):
  with pytest.raises(UsageError, match=match):
    rr.blocks(text)


def test_cli_check_and_write(tmp_path):
  readme = tmp_path / "README.md"
  readme.write_text(README)
  (tmp_path / "results" / "digits").mkdir(parents=True)
  (tmp_path / "results" / "digits" / "summary.md").write_text("new numbers\n")
  args = [f"--readme={readme}", f"--results_dir={tmp_path / 'results'}"]
  p = run_module("tfrobust.readme_results", "--check", *args, timeout=60)
  assert p.returncode == 1 and p.stderr.count("\n") == 1 and "differs" in p.stderr
  assert readme.read_text() == README  # --check changes nothing
  assert run_module("tfrobust.readme_results", *args, timeout=60).returncode == 0
  assert "<!-- results:digits:start -->\nnew numbers\n<!-- results:digits:end -->" in readme.read_text()
  assert run_module("tfrobust.readme_results", "--check", *args, timeout=60).returncode == 0
  p = run_module("tfrobust.readme_results", "--bogus", *args, timeout=60)
  assert p.returncode == 2 and p.stderr.startswith("error:") and "bogus" in p.stderr and p.stderr.count("\n") == 1
