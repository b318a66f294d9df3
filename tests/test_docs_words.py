"""The user-facing pages (README.md, CONTRIBUTING.md, docs/) speak to someone who installs the tool today: no
project history ("yesterday's PGD", "before issue 15", "the previous version", a commit hash), no reviewers, no
"this machine". History belongs in CHANGELOG.md, measurements with their CPU and date in docs/benchmarks.md.
The generated study reports (docs/results/NAME/report.md, summary.md) and the calibration table that
`make calibration` writes into docs/verdicts.md are generated text and are not scanned."""

import glob
import os
import re

import pytest

from conftest import ROOT

# (pattern, why it does not belong on a user's page)
FORBIDDEN = [
    (r"\bissues?\s*#?\d+", "an issue number is the project's history"),
    (r"\(issue\b", "an issue reference is the project's history"),
    (r"\breferees?\b", "a reviewer is the project's history"),
    (r"\byesterday", "relative dates go stale the next day"),
    (r"\bearlier (measurement|run|version|code|report|design)", "an earlier state is the project's history"),
    (r"\bprevious (version|report|code|commit|measurement)", "an earlier state is the project's history"),
    (r"\bthe first design\b", "an earlier state is the project's history"),
    (r"\bthis machine\b", "the reader's machine is not ours: name the CPU"),
    (r"\bthis project's [\w-]+ (CPU )?machine", "the reader's machine is not ours: name the CPU"),
    (r"\bon the way\b", "how a figure was found is the project's history"),
    (r"\bcommit\s+(before|[0-9a-f]{7,40}\b)", "a commit is the project's history"),
    (r"\((?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\)", "a commit hash is the project's history"),
]
_CALIBRATION = re.compile(r"<!-- calibration:start -->.*?<!-- calibration:end -->", re.S)


def user_pages(root=ROOT):
  """The pages a user reads: README.md, CONTRIBUTING.md, docs/*.md and docs/results/README.md."""
  pages = [os.path.join(root, "README.md"), os.path.join(root, "CONTRIBUTING.md")]
  pages += sorted(glob.glob(os.path.join(root, "docs", "*.md")))
  pages += [p for p in [os.path.join(root, "docs", "results", "README.md")] if os.path.exists(p)]
  return pages


def findings(text):
  """[(line number, matched text, why)] for every forbidden phrase (the calibration block left out)."""
  text = _CALIBRATION.sub(lambda m: "\n" * m.group(0).count("\n"), text)
  out = []
  for pattern, why in FORBIDDEN:
    for m in re.finditer(pattern, text, re.I):
      out.append((text.count("\n", 0, m.start()) + 1, m.group(0), why))
  return sorted(out)


@pytest.mark.parametrize("page", user_pages(), ids=lambda p: os.path.relpath(p, ROOT))
def test_user_pages_speak_to_the_user_not_of_the_project(page):
  with open(page, encoding="utf-8") as f:
    found = findings(f.read())
  assert not found, "\n".join(f"{os.path.relpath(page, ROOT)}:{n}: {s!r}: {why}" for n, s, why in found)


@pytest.mark.parametrize("text", [
    "two minutes against yesterday's PGD", "(issue 3)", "before issue 15's work (d23bc0c)", "A referee then read",
    "an earlier measurement on such a CPU", "the previous version took 3 min", "on this machine",
    "on this project's 2-core CPU machine", "Two overheads were found on the way", "the commit before the change",
])
def test_each_pattern_catches_what_it_is_for(text):
  assert findings(text)


@pytest.mark.parametrize("text", [
    "Each attack runs on what the earlier ones left.", "issues with keras-tuner are worked around in tuner.py",
    "measured on a 2-core Intel Xeon (AVX-512), 2026-11-30", "a deadbeef value", "the previous B in the grid",
    "<!-- calibration:start -->\nGoals missed in issue 14\n<!-- calibration:end -->",
])
def test_ordinary_words_pass(text):
  assert not findings(text)
