"""The report leads with the answer (report/answer.py): a sentence per claim that names the component deciding it,
the glossary, the controls matrix, the "Excluded trials" section that "see excluded" links to, no unfilled
placeholder; report.html with a table of contents, verdict colours and every image embedded."""

import json
import os
import re
import sys

from conftest import ROOT
sys.path.insert(0, os.path.dirname(__file__))  # pytest runs with --import-mode=importlib
from synthetic import write_sweep  # noqa: E402 pylint: disable=wrong-import-position
from tfrobust.report import answer, claims, effects  # noqa: E402
from tfrobust.report import build as report  # noqa: E402


def _committed(name="digits_study"):
  with open(os.path.join(ROOT, "docs", "results", name, "verdicts.json"), encoding="utf-8") as f:
    return json.load(f)


def _row(claim, comp, verdict, ci=None, *, rule=claims.DECREASE, margin=1.0, control=effects.ALL, why="μ = 0: x"):
  est = None if ci is None else sum(ci) / 2
  return {"claim": claim, "component": comp, "control": control, "verdict": verdict, "ci": ci, "estimate": est,
          "rule": rule, "margin": margin, "unit": claims.PER_DOUBLING, "n_seeds": 3, "why": why, "parts": [],
          "excluded": [], "seeds_needed": 8}


def _claim(claim, verdict, control=effects.ALL):
  return {"claim": claim, "component": "claim", "control": control, "verdict": verdict, "fragile": False}


def test_a_claim_sentence_names_the_component_that_decided_it():
  """C1 "not supported" on clean accuracy alone must not read as "large batch does not hurt robustness"."""
  rows = [_row("C1", "clean", claims.NEGLIGIBLE, [-0.6, 0.1]), _row("C1", "adv", claims.INCONCLUSIVE, [-1.6, 0.4]),
          _row("C1", "eig", claims.SUPPORTED, [0.3, 0.5], rule=claims.INCREASE, margin=0.1),
          _claim("C1", claims.NOT_SUPPORTED)]
  s = answer.claim_sentence(rows, "C1")
  assert s.startswith("**C1 — not supported**, decided by clean accuracy (negligible).")
  assert "adversarial accuracy — cannot tell yet (inconclusive: -0.60 [-1.60, +0.40] points per doubling of B, " \
         "μ = 0; about 8 seeds would decide it)" in s
  assert "λ_max — rises, by more than 0.1 points per doubling of B (supported: +0.40 [+0.30, +0.50]" in s
  assert [r["component"] for r in answer.deciding(rows, "C1")] == ["clean"]


def test_inconclusive_and_supported_claims_name_their_components():
  rows = [_row("C3", "adv", claims.INCONCLUSIVE, [-1, 3], rule=claims.POSITIVE),
          _row("C3", "clean", claims.SUPPORTED, [1.5, 3], rule=claims.POSITIVE), _claim("C3", claims.INCONCLUSIVE)]
  assert answer.claim_sentence(rows, "C3").startswith("**C3 — inconclusive**, decided by adversarial accuracy "
                                                      "(inconclusive).")
  rows[0] = _row("C3", "adv", claims.SUPPORTED, [1.2, 3], rule=claims.POSITIVE)
  rows[2] = _claim("C3", claims.SUPPORTED)
  s = answer.claim_sentence(rows, "C3")
  assert "decided by adversarial accuracy (supported), clean accuracy (supported)" in s
  assert "momentum helps more at a fixed η, by more than 1 point" in s


def test_near_the_boundary_is_a_verdict_a_tenth_of_its_width_can_move():
  """The digits C4.eig, [+0.077, +2.147] against ±0.1 on one CPU kind, was contradicted on another."""
  rows = _committed()
  find = lambda c, k: next(r for r in rows if (r["claim"], r["component"], r["control"]) == (c, k, "all"))  # noqa
  assert answer.near_boundary(_row("C4", "eig", claims.INCONCLUSIVE, [0.077, 2.147], rule=claims.EQUIVALENT,
                                   margin=0.1))
  assert not answer.near_boundary(find("C1", "clean"))  # [−0.55, +0.01] well inside ±1
  assert answer.near_boundary(_row("C1", "clean", claims.NEGLIGIBLE, [-0.95, 0.2]))
  assert not answer.near_boundary(_row("C1", "clean", claims.NEGLIGIBLE, [-0.5, 0.2]))


def test_controls_matrix_has_every_component_on_every_control():
  rows = _committed()
  head, matrix = answer.controls_matrix(rows)
  assert head == ["component"] + list(effects.CONTROLS)
  assert len(matrix) == len(claims.COMPONENTS) + len(claims.STATEMENTS)
  c1 = next(m for m in matrix if m[0] == "**C1**")
  assert c1[1:] == ["**not supported**"] * 4
  eig = next(m for m in matrix if m[0] == "C1.eig")
  assert eig[3:] == ["not measured", "not applicable"]


def _sweep(tmp_path, **kw):
  def truth(regime, b, mu, s):
    drop = 0.02 * (b / 16) ** 0.5 if regime == "fixed_lr" else 0.0
    return 0.95 - drop + 0.01 * mu, 0.6 - 2 * drop + 0.02 * mu

  def collapse(line):  # one collapsed trial: left out of every control but adverse, and listed
    if line["trial_id"] == "constant_ratio-b256-m0.9-s1":
      line["metrics"]["test_accuracy"] = 0.1
    return line
  return write_sweep(str(tmp_path), truth, edit=collapse, **kw)


def test_report_opens_with_the_answer_and_has_the_sections_it_points_to(tmp_path):
  d = _sweep(tmp_path)
  md = open(report.write_report(d, with_figures=False), encoding="utf-8").read()
  heads = re.findall(r"^## (.+)$", md, re.M)
  assert heads[:3] == ["The answer", "What the labels mean", "Verdicts on every control"]
  assert answer.EXCLUDED_TITLE in heads
  for label in claims.VERDICTS:
    assert f"- **{label}**:" in md
  assert "see excluded" not in md.replace("[see excluded](#excluded-trials)", "")
  excluded = md.split(f"## {answer.EXCLUDED_TITLE}")[1].split("\n## ")[0]
  assert "constant_ratio-b256-m0.9-s1" in excluded and "collapsed" in excluded
  # no unfilled placeholder: an upper-case constant or a format field where a number belongs
  assert not re.search(r"\b(REPS|MAX_SEEDS|MIN_SEEDS|POWER_AT)\b|\{[a-z_]+\}", md)


def test_report_html_has_contents_colours_and_embedded_images(tmp_path):
  d = _sweep(tmp_path)
  report.write_report(d)
  html = open(os.path.join(d, "report", "report.html"), encoding="utf-8").read()
  assert '<nav><b>Contents</b>' in html and '<a href="#the-answer">The answer</a>' in html
  assert '<h2 id="excluded-trials">' in html
  assert re.search(r'<td style="background:#[0-9a-f]{6}33"><b>not supported</b>', html) \
      or re.search(r'<td style="background:#[0-9a-f]{6}33"><b>inconclusive</b>', html)
  srcs = re.findall(r'src="([^"]*)"', html)
  assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)  # opens offline
  first = re.search(r'<img src="data:[^"]*" alt="([^"]+)"', html)
  assert first.group(1) == "verdicts.png"  # the verdict picture is the first image, inside the answer section
  assert html.index('id="the-answer"') < first.start() < html.index('id="what-the-labels-mean"')
