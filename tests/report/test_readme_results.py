"""README.md and docs/results/README.md quote the committed study reports (docs/results/*/summary.md verbatim, and
one verdict table built from docs/results/*/verdicts.json), and tfrobust.readme_results keeps them so: replace,
check, and refuse unpaired markers."""

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


def _pages():
  out = {}
  for name in ("README.md", os.path.join("docs", "results", "README.md")):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
      out[name] = f.read()
  return out


def test_pages_quote_every_committed_summary_and_the_verdict_table():
  """Fails when a docs/results/NAME/summary.md differs from its block (on README.md or docs/results/README.md),
  when no page has its block, when a block has no committed summary, or when README.md's verdict table differs
  from the committed verdicts.json files."""
  results = os.path.join(ROOT, "docs", "results")
  pages = _pages()
  table = rr.verdict_table(rr.verdict_rows(results))
  assert rr.pages_problems(pages, rr.summaries(results), table) == []
  assert "<!-- verdicts:start -->" in pages["README.md"]


def test_verdict_table_names_the_deciding_component_and_follows_the_rows():
  rows = rr.verdict_rows(os.path.join(ROOT, "docs", "results"))
  table = rr.verdict_table({"digits_study": rows["digits_study"]})
  line = next(x for x in table.splitlines() if x.startswith("| C1:"))
  assert "**not supported**: clean negligible, -0.27 [-0.55, +0.01]" in line
  changed = [dict(r, verdict="supported") if (r["claim"], r["component"]) == ("C1", "claim") and
             r["control"] == "all" else r for r in rows["digits_study"]]
  assert rr.verdict_table({"digits_study": changed}) != table
  page = "a\n<!-- verdicts:start -->\nold\n<!-- verdicts:end -->\nb\n"
  assert rr.table_problems("P", page, table) == ["P: the verdicts block differs from docs/results/*/verdicts.json"]
  new = rr.replace_table(page, table)
  assert rr.table_problems("P", new, table) == [] and new.startswith("a\n<!-- verdicts:start -->\n| claim |")


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
