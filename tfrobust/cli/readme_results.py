"""Paste the committed study results into the pages that quote them: `python -m tfrobust.readme_results [--check]`.

On every page of `--readme` (README.md and docs/results/README.md), replaces the text between
`<!-- results:NAME:start -->` and `<!-- results:NAME:end -->` with docs/results/NAME/summary.md, and the text
between `<!-- verdicts:start -->` and `<!-- verdicts:end -->` with the table of every study's verdicts
(tfrobust/report/readme_results.py). `--check` changes nothing and exits 1 with one line when a page differs; bad
input: one line, exit 2.
"""

import os
import sys

from absl import flags

from tfrobust import cli
from tfrobust import io
from tfrobust.errors import UsageError
from tfrobust.report import readme_results

FLAGS = flags.FLAGS
flags.DEFINE_bool("check", False, "Change nothing; exit 1 with one line when README.md differs from the summaries.")
flags.DEFINE_list("readme", ["README.md", os.path.join("docs", "results", "README.md")],
                  "The pages whose marked blocks quote the summaries and the verdict table (comma-separated).")
flags.DEFINE_string("results_dir", os.path.join("docs", "results"), "Where the committed reports are "
                    "(NAME/summary.md each).")


def main(argv):
  cli.check_no_arguments(argv)
  pages = {}
  for path in FLAGS.readme:
    if not os.path.isfile(path):
      raise UsageError(f"--readme={path}: no such file")
    with open(path, encoding="utf-8") as f:
      pages[path] = f.read()
  sums = readme_results.summaries(FLAGS.results_dir)
  table = readme_results.verdict_table(readme_results.verdict_rows(FLAGS.results_dir))
  if FLAGS.check:
    found = readme_results.pages_problems(pages, sums, table)
    if found:
      print(f"error: {found[0]} (run python -m tfrobust.readme_results)", file=sys.stderr)
      return 1
    return 0
  missing = [p for p in readme_results.pages_problems(pages, sums, table) if p.startswith("no page has")]
  if missing:
    raise UsageError(f"{missing[0]}; add the two markers where the results go")
  for path, text in pages.items():
    mine = {n: sums[n] for n in readme_results.blocks(text) if n in sums}
    new = readme_results.replace_table(readme_results.replace(text, mine), table)
    if new != text:
      io.write_text(path, new)
      print(f"{path}: updated")
  return 0


def run():
  cli.run_main(main, doc=__doc__)
