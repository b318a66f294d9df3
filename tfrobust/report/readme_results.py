"""Keeps README.md's quoted study results equal to the committed reports: the text between
`<!-- results:NAME:start -->` and `<!-- results:NAME:end -->` is docs/results/NAME/summary.md (written by
tfrobust.report). Why: numbers pasted by hand drift from the report that produced them. The command line is
`python -m tfrobust.readme_results` (tfrobust/cli/readme_results.py).
"""

import glob
import os
import re

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
