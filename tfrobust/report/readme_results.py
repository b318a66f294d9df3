"""Keeps README.md's quoted study results equal to the committed reports: `python -m tfrobust.report.readme_results`
replaces the text between `<!-- results:NAME:start -->` and `<!-- results:NAME:end -->` with
docs/results/NAME/summary.md (written by tfrobust.report); `--check` changes nothing and exits 1 with one line
when README.md differs. Why: numbers pasted by hand drift from the report that produced them.
"""

import glob
import os
import re
import sys

from tfrobust import io
from tfrobust.errors import UsageError

_MARKER = re.compile(r"<!-- results:([A-Za-z0-9_.-]+):(start|end) -->")


def summaries(results_dir):
  """{NAME: summary.md text} for every docs/results/NAME/summary.md."""
  out = {}
  for path in sorted(glob.glob(os.path.join(results_dir, "*", "summary.md"))):
    with open(path, encoding="utf-8") as f:
      out[os.path.basename(os.path.dirname(path))] = f.read()
  return out


def blocks(readme):
  """{NAME: (start, end)}: the character span between each pair of markers; UsageError when unpaired."""
  found, open_at = {}, {}
  for m in _MARKER.finditer(readme):
    name, which = m.group(1), m.group(2)
    if which == "start":
      if name in open_at or name in found:
        raise UsageError(f"README.md: marker results:{name}:start appears twice")
      open_at[name] = m.end()
    else:
      if name not in open_at:
        raise UsageError(f"README.md: marker results:{name}:end without a start")
      found[name] = (open_at.pop(name), m.start())
  if open_at:
    raise UsageError(f"README.md: marker results:{sorted(open_at)[0]}:start without an end")
  return found


def _body(summary):
  return "\n" + summary.strip("\n") + "\n"


def problems(readme, sums):
  """One line per difference between README.md's marked blocks and the summaries (empty: in sync)."""
  spans = blocks(readme)
  out = [f"README.md has no <!-- results:{n}:start --> block for docs/results/{n}/summary.md"
         for n in sorted(set(sums) - set(spans))]
  out += [f"README.md block results:{n} has no docs/results/{n}/summary.md" for n in sorted(set(spans) - set(sums))]
  out += [f"README.md block results:{n} differs from docs/results/{n}/summary.md"
          for n in sorted(set(spans) & set(sums)) if readme[spans[n][0]:spans[n][1]] != _body(sums[n])]
  return out


def replace(readme, sums):
  """README text with every marked block set to its summary; UsageError when a summary has no block."""
  spans = blocks(readme)
  missing = sorted(set(sums) - set(spans))
  if missing:
    raise UsageError(f"README.md has no <!-- results:{missing[0]}:start --> ... <!-- results:{missing[0]}:end --> "
                     "block; add the two markers where the results go")
  for name in sorted(spans, key=lambda n: -spans[n][0]):  # from the end, so earlier spans stay valid
    if name in sums:
      a, b = spans[name]
      readme = readme[:a] + _body(sums[name]) + readme[b:]
  return readme


def main(argv=None):
  """Exit 0: in sync (or updated); 1: --check found a difference; 2: bad input."""
  args = list(sys.argv[1:] if argv is None else argv)
  check = "--check" in args
  opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
  readme_path = opts.pop("readme", "README.md")
  results_dir = opts.pop("results_dir", os.path.join("docs", "results"))
  try:
    bad = [a for a in args if a != "--check" and not (a.startswith("--") and "=" in a)] + [f"--{k}" for k in opts]
    if bad:
      raise UsageError(f"{bad[0]}: unexpected argument (usage: python -m tfrobust.report.readme_results [--check] "
                       "[--readme=README.md] [--results_dir=docs/results])")
    if not os.path.isfile(readme_path):
      raise UsageError(f"--readme={readme_path}: no such file")
    with open(readme_path, encoding="utf-8") as f:
      readme = f.read()
    sums = summaries(results_dir)
    if check:
      found = problems(readme, sums)
      if found:
        print(f"error: {found[0]} (run python -m tfrobust.report.readme_results)", file=sys.stderr)
        return 1
      return 0
    new = replace(readme, sums)
  except UsageError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if new != readme:
    io.write_text(readme_path, new)
    print(f"{readme_path}: updated {len(sums)} results block(s)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
