"""Keeps README.md's quoted study results equal to the committed reports: the text between
`<!-- results:NAME:start -->` and `<!-- results:NAME:end -->` is docs/results/NAME/summary.md (written by
tfrobust.report). The text between `<!-- verdicts:start -->` and `<!-- verdicts:end -->` is one table across the
committed studies, built from their verdicts.json by the words the report uses (answer.py). The summaries may sit
on any of the pages handed over (README.md, docs/results/README.md). Why: numbers pasted by hand drift from the
report that produced them. The command line is `python -m tfrobust.readme_results` (tfrobust/cli/readme_results.py).
"""

import glob
import json
import os
import re

from tfrobust.errors import UsageError
from tfrobust.report import answer, render

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


# ---------------------------------------------------------------------------------------------- the verdict table

_TABLE = re.compile(r"<!-- verdicts:start -->(.*?)<!-- verdicts:end -->", re.S)


def verdict_rows(results_dir):
  """{NAME: verdict rows} for every docs/results/NAME/verdicts.json."""
  out = {}
  for path in sorted(glob.glob(os.path.join(results_dir, "*", "verdicts.json"))):
    with open(path, encoding="utf-8") as f:
      out[os.path.basename(os.path.dirname(path))] = json.load(f)
  return out


def _cell(rows, claim):
  main = answer.verdicts.find(rows, claim)
  by = answer.deciding(rows, claim)
  cell = f"**{main['verdict']}**"
  if not by:
    return cell
  r = by[0]
  near = ", near the boundary" if answer.near_boundary(r) else ""
  est = answer.estimate_text(r).split(" ")
  est = " ".join(est[:3]) if len(est) >= 3 else ""  # estimate [lo, hi] without the unit (in the table's key)
  more = f" (+{len(by) - 1} more)" if len(by) > 1 else ""
  return f"{cell}: {r['component']} {r['verdict']}{', ' + est if est else ''}{near}{more}"


def verdict_table(by_study, link="docs/results"):
  """Markdown: one row per claim, one column per study (linked to its report): the claim's verdict on the all
  control, then the component that decided it with its estimate and 95% interval (answer.deciding)."""
  names = sorted(by_study)
  head = ["claim"] + [f"[{n}]({link}/{n}/report.md)" for n in names]
  body = [[f"{c}: {answer.SHORT[c]}"] + [_cell(by_study[n], c) for n in names] for c in answer.QUESTIONS
          if all(any(r["claim"] == c for r in by_study[n]) for n in names)]
  return render.md_table(head, body)


def table_problems(page_name, text, table):
  """One line when the page's verdicts block differs from the table (none when the page has no such block)."""
  m = _TABLE.search(text)
  if m and m.group(1) != _body(table):
    return [f"{page_name}: the verdicts block differs from docs/results/*/verdicts.json"]
  return []


def replace_table(text, table):
  """The page with its verdicts block (if any) set to the table."""
  return _TABLE.sub(lambda m: "<!-- verdicts:start -->" + _body(table) + "<!-- verdicts:end -->", text)


def pages_problems(pages, sums, table):
  """Across pages {name: text}: every summary quoted by exactly the block of its name on some page, and every
  verdicts block equal to the table. One line per difference."""
  out, have = [], set()
  for name, text in pages.items():
    spans = blocks(text)
    have |= set(spans)
    out += [p.replace("README.md", name, 1) for p in problems(text, {n: sums[n] for n in spans if n in sums})]
    out += [f"{name} block results:{n} has no docs/results/{n}/summary.md" for n in sorted(set(spans) - set(sums))]
    out += table_problems(name, text, table)
  return [f"no page has a <!-- results:{n}:start --> block for docs/results/{n}/summary.md"
          for n in sorted(set(sums) - have)] + out
