"""Paste the committed study summaries into README.md: `python -m tfrobust.readme_results [--check]`.

Replaces the text between `<!-- results:NAME:start -->` and `<!-- results:NAME:end -->` with
docs/results/NAME/summary.md (tfrobust/report/readme_results.py). `--check` changes nothing and exits 1 with one
line when README.md differs; bad input: one line, exit 2.
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
flags.DEFINE_string("readme", "README.md", "The README whose marked blocks hold the summaries.")
flags.DEFINE_string("results_dir", os.path.join("docs", "results"), "Where the committed reports are "
                    "(NAME/summary.md each).")


def main(argv):
  cli.check_no_arguments(argv)
  if not os.path.isfile(FLAGS.readme):
    raise UsageError(f"--readme={FLAGS.readme}: no such file")
  with open(FLAGS.readme, encoding="utf-8") as f:
    readme = f.read()
  sums = readme_results.summaries(FLAGS.results_dir)
  if FLAGS.check:
    found = readme_results.problems(readme, sums)
    if found:
      print(f"error: {found[0]} (run python -m tfrobust.readme_results)", file=sys.stderr)
      return 1
    return 0
  new = readme_results.replace(readme, sums)
  if new != readme:
    io.write_text(FLAGS.readme, new)
    print(f"{FLAGS.readme}: updated {len(sums)} results block(s)")
  return 0


def run():
  cli.run_main(main, doc=__doc__)
