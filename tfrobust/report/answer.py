"""The answer first: one plain sentence per claim and component, built from the verdict rows (verdicts.json), so
that a claim's label never hides which component decided it; the glossary of the labels; the verdict of every
component on every control as one matrix; the trials each control left out.

Everything here reads the rows only (no trials, no TensorFlow), so README.md's cross-study table
(readme_results.py) is built from the committed verdicts.json files by the same words the report uses.
"""

from tfrobust.report import claims, effects, verdicts

# What each claim asks, in the words a reader would use (the full statements: claims.STATEMENTS).
QUESTIONS = {
    "C1": "At a fixed η, does a larger B hurt accuracy and robustness and sharpen the loss (a larger λ_max)?",
    "C2": "At a constant η/B, do clean and adversarial accuracy stay the same at every B?",
    "C3": "Does momentum help more when B varies at a fixed η than at a constant η/B?",
    "C4": "Does the SGD temperature T = η/(B(1−μ)) alone explain accuracy, robustness and λ_max?",
}
SHORT = {"C1": "larger B at a fixed η", "C2": "larger B at a constant η/B", "C3": "momentum, fixed η vs constant η/B",
         "C4": "only T = η/(B(1−μ)) matters"}
METRIC = {"clean": "clean accuracy", "adv": "adversarial accuracy", "eig": "λ_max"}

GLOSSARY = [
    (claims.SUPPORTED, "the whole 95% interval lies beyond the margin in the claimed direction (for C2 and C4: "
                       "inside ± the margin)."),
    (claims.DIRECTION_ONLY, "the interval lies on the claimed side of 0 but reaches inside the margin: the effect "
                            "exists, its size is not shown to matter. Does not count for the claim."),
    (claims.NEGLIGIBLE, "the interval lies inside ± the margin: no effect worth the name. Counts against the claim."),
    (claims.CONTRADICTED, "the interval lies wholly on the other side of 0 (for C2 and C4: wholly outside ± the "
                          "margin). Counts against the claim."),
    (claims.INCONCLUSIVE, "the interval is too wide to tell: more seeds would decide it (the report says how many)."),
    (claims.NOT_MEASURED, "no value at some momentum or B of the grid (failed, or left out of this control)."),
    (claims.NOT_MEASURABLE, "most cells sit at a floor or ceiling of accuracy; the report names an ε that would be "
                            "measurable."),
    (claims.NOT_APPLICABLE, "the control does not apply (a collapsed network has no adverse curvature)."),
    (claims.NOT_SUPPORTED, "a claim's verdict when any of its components is negligible or contradicted."),
    ("fragile", "a component is supported on one control and counts against the claim on another."),
    ("underpowered", "a supported component is only inconclusive on another control (fewer trials there)."),
    ("near the boundary", "moving the interval by a tenth of its width would change the verdict: a rerun "
                          "(other seeds, another CPU kind) can move it across."),
]
# One colour per label (report.html cells, verdicts.png): green counts for the claim, red against it, amber leaves
# it open, grey is not judged.
VERDICT_COLOURS = {claims.SUPPORTED: "#1a9850", claims.DIRECTION_ONLY: "#91cf60", claims.NEGLIGIBLE: "#f46d43",
                   claims.CONTRADICTED: "#d73027", claims.NOT_SUPPORTED: "#d73027", claims.INCONCLUSIVE: "#fdae61",
                   claims.NOT_MEASURED: "#969696", claims.NOT_MEASURABLE: "#969696", claims.NOT_APPLICABLE: "#d9d9d9"}
NEAR = 0.1  # an interval end this share of the interval's width from a boundary is "near the boundary"


def _unit(unit, amount=None):
  u = unit.split(" (")[0]
  return u.replace("points", "point", 1) if amount == 1 else u


def fmt(x, unit):
  return "—" if x is None else (f"{x:+.3f}" if unit.startswith("log2") else f"{x:+.2f}")


def estimate_text(row):
  """'+0.271 [+0.111, +0.430] log2 λ_max per doubling of B' (or '' when there is no estimate)."""
  if row.get("estimate") is None:
    return ""
  u = row["unit"]
  ci = "" if row.get("ci") is None else f" [{fmt(row['ci'][0], u)}, {fmt(row['ci'][1], u)}]"
  return f"{fmt(row['estimate'], u)}{ci} {_unit(u)}"


def near_boundary(row):
  """True when moving the component's interval by NEAR × its width, either way, would change its verdict (the
  deciding interval judged by the component's own rule)."""
  ci, m, kind = row.get("ci"), row.get("margin"), row.get("rule")
  if ci is None or not m or kind is None or row["component"] == "claim":
    return False
  judge = lambda lo, hi: claims.decide(kind, (lo, hi), margin=m, n_seeds=row["n_seeds"])[0]  # noqa: E731
  if judge(*ci) != row["verdict"]:  # decided by a part other than its interval alone: not ours to call
    return False
  d = NEAR * (ci[1] - ci[0])
  return any(judge(ci[0] + s, ci[1] + s) != row["verdict"] for s in (-d, d))


def _moves(row):
  """What the effect does, in words, for a decided verdict."""
  kind, v, m = row.get("rule"), row["verdict"], row.get("margin")
  unit = _unit(row["unit"], m)
  if kind == claims.EQUIVALENT:
    return {claims.SUPPORTED: f"stays within ±{m:g} {unit}, as claimed",
            claims.CONTRADICTED: f"moves by more than ±{m:g} {unit}, against the claim"}.get(v)
  word, other = ("falls", "rises") if kind == claims.DECREASE else ("rises", "falls")
  if row["claim"] == "C3":
    word, other = "momentum helps more at a fixed η", "momentum helps less at a fixed η than at a constant η/B"
  return {claims.SUPPORTED: f"{word}, by more than {m:g} {unit}",
          claims.DIRECTION_ONLY: f"{word}, but not shown to exceed {m:g} {unit}",
          claims.NEGLIGIBLE: f"no effect beyond ±{m:g} {unit}",
          claims.CONTRADICTED: f"{other}: the opposite of the claim"}.get(v)


def _seeds_text(row):
  """'8 seeds' or '3–8 seeds' from the row's power advice (its `advice` goals, else `seeds_needed`); '' when
  no number of seeds is known to decide it."""
  adv = row.get("advice")
  if isinstance(adv, dict):
    all_goals = adv.get("goals") or {}
    goals = [g.get("seeds") for g in ([all_goals["support"]] if "support" in all_goals else all_goals.values())]
    ranges = [s for s in goals if s and s[0] is not None]
    if not ranges and any(g.get("seeds") for g in all_goals.values()):
      return "more than 200 seeds would be needed"
    if not ranges:
      never = [g for g in (adv.get("goals") or {}).values() if g.get("seeds") is None and g.get("examples_needed")]
      first = next(((k, x) for g in never for k, x in g["examples_needed"].items() if x), None)
      return ("no number of seeds can decide it with this test set" +
              (f" ({first[1]} test examples at {first[0]} seeds could)" if first else ""))
    lo, hi = min(ranges, key=lambda s: s[0])
    return (f"{lo} seeds" if hi == lo else f"{lo}–{hi if hi is not None else 'over 200'} seeds") + " would decide it"
  need = row.get("seeds_needed")
  return f"about {need} seeds would decide it" if need else ""


def component_sentence(row):
  """'adversarial accuracy — cannot tell yet (inconclusive: −0.57 [−1.56, +0.41] points per doubling of B at
  μ = 0; 8 seeds would decide it)'."""
  v = row["verdict"]
  what = METRIC.get(row["component"], row["component"])
  where = row.get("why", "").split(": ", 1)[0] if ": " in row.get("why", "") else ""
  est = estimate_text(row)
  detail = ", ".join(x for x in (est, where if est else "") if x)
  if v == claims.INCONCLUSIVE:
    need = _seeds_text(row)
    tail = f"; {need}" if need else ""
    if "too few seeds" in row.get("why", ""):
      tail = f"; {row['why'].split(': ', 1)[-1]}"
    text = f"cannot tell yet ({v}: {detail}{tail})" if detail else f"cannot tell yet ({v}{tail})"
  elif v in (claims.NOT_MEASURED, claims.NOT_MEASURABLE, claims.NOT_APPLICABLE):
    text = f"{v} ({row.get('why', '')})" if row.get("why") else v
  else:
    text = f"{_moves(row)} ({v}: {detail})"
  if near_boundary(row):
    text += ", near the boundary"
  return f"{what} — {text}"


def deciding(rows, claim, control=effects.ALL):
  """The component rows that decided the claim's verdict on a control: those that count against it (not
  supported), those that leave it open (inconclusive), or every component (supported)."""
  main = verdicts.find(rows, claim, control=control)
  comps = [r for r in rows if r["claim"] == claim and r["control"] == control and r["component"] != "claim"
           and r["verdict"] != claims.NOT_APPLICABLE]
  if main["verdict"] == claims.NOT_SUPPORTED:
    return ([r for r in comps if r["verdict"] == claims.CONTRADICTED]
            + [r for r in comps if r["verdict"] == claims.NEGLIGIBLE])
  if main["verdict"] == claims.INCONCLUSIVE:
    return [r for r in comps if claims.vote(r["verdict"]) == claims.INCONCLUSIVE]
  return comps


def claim_sentence(rows, claim, control=effects.ALL):
  """'C1 (larger B at a fixed η): not supported, decided by clean accuracy (negligible). At a fixed η, larger B:
  clean accuracy — …; adversarial accuracy — …; λ_max — ….'"""
  main = verdicts.find(rows, claim, control=control)
  by = deciding(rows, claim, control)
  decided = ", ".join(f"{METRIC.get(r['component'], r['component'])} ({r['verdict']})" for r in by)
  head = f"**{claim} — {main['verdict']}**" + (f", decided by {decided}" if decided else "")
  comps = [r for r in rows if r["claim"] == claim and r["control"] == control and r["component"] != "claim"]
  flags = " **Fragile.**" if main.get("fragile") else ""
  return f"{head}. {QUESTIONS[claim]} {'; '.join(component_sentence(r) for r in comps)}.{flags}"


def answer_lines(rows):
  return [claim_sentence(rows, c) for c in verdicts.STATEMENTS]


def glossary_lines():
  return [f"**{label}**: {text}" for label, text in GLOSSARY]


def controls_matrix(rows):
  """(head, rows): one row per component and claim, one column per control, the verdict in each cell."""
  by = {(r["claim"], r["component"], r["control"]): r for r in rows}
  keys = list(dict.fromkeys((r["claim"], r["component"]) for r in rows))
  out = []
  for claim, comp in keys:
    cells = []
    for c in effects.CONTROLS:
      r = by.get((claim, comp, c))
      cell = "—" if r is None else r["verdict"]
      if r is not None and (r.get("fragile") or near_boundary(r)):
        cell += " (fragile)" if r.get("fragile") else " (near the boundary)"
      cells.append(f"**{cell}**" if comp == "claim" else cell)
    out.append([f"{claim}.{comp}" if comp != "claim" else f"**{claim}**"] + cells)
  return ["component"] + list(effects.CONTROLS), out


def excluded_rows(rows):
  """One row per trial left out of a component on a control: (component, control, trial, reason); rows of a
  trial left out of several components of one claim and control are merged."""
  seen = {}
  for r in rows:
    if r["component"] == "claim":
      continue
    for e in r.get("excluded", []):
      key = (r["claim"], r["control"], e["trial_id"], e["reason"])
      seen.setdefault(key, []).append(r["component"])
  return [[f"{claim}.{'/'.join(comps)}", control, tid, reason]
          for (claim, control, tid, reason), comps in sorted(seen.items())]


EXCLUDED_TITLE = "Excluded trials"
FIGURE = "verdicts.png"


def blocks(rows, figs=()):
  """The report's opening: the answer, the verdict picture (FIGURE, when figs [(file, caption)] holds it), the
  glossary, the controls matrix."""
  figure = next((f for f in figs if f[0] == FIGURE), None)
  head, matrix = controls_matrix(rows)
  out = [("h", 2, "The answer"),
         ("p", "One sentence per claim (control all: usable and doubtful trials), then what each component "
               "showed; the component named after \"decided by\" is the one that set the claim's verdict."),
         ("ul", answer_lines(rows))]
  if figure:
    out += [("img", figure[0], figure[1])]
  out += [("h", 2, "What the labels mean"), ("ul", glossary_lines()),
          ("h", 2, "Verdicts on every control"),
          ("p", "Controls: " + "; ".join(f"**{c}**: {effects.CONTROL_TEXT[c]}" for c in effects.CONTROLS) + "."),
          ("table", head, matrix)]
  return out


def excluded_blocks(rows):
  """The section that "see excluded" points to."""
  ex = excluded_rows(rows)
  body = ([("table", ["component", "control", "trial", "why it was left out"], ex)] if ex
          else [("p", "No trial was left out of any component on any control.")])
  return [("h", 2, EXCLUDED_TITLE),
          ("p", "Every trial a control left out of a component, with the reason (collapsed, diverged and failed "
                "trials are also listed with their class below).")] + body
