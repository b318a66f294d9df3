"""The study report: `python -m tfrobust.report --sweep_dir=DIR` reads DIR/results.jsonl and writes DIR/report/.

report.md and report.html (figures embedded) answer the study's claims C1-C3 (see the README) with effects, 95% CIs over seeds
and verdicts by rules written into the report; they list diverged runs (excluded from fits), failed trials and
what is missing from a partial sweep. No TensorFlow: the report runs anywhere in about a second.
"""

import base64
import collections
import datetime
import html
import json
import os
import re
import sys

from tfrobust import figures, verdicts
from tfrobust.errors import UsageError
from tfrobust.report_data import (adv_accuracy, choose_adv, load_results, load_sweep, missing_points,
                                  regimes_of, to_points)

_MAX_LISTED = 60


# ---------------------------------------------------------------------------------------------- figures

def adv_curves(trials, regime):
  """{(attack, norm): {μ: {B: [(ε, Estimate over seeds)]}}} with ε = 0 taken from clean accuracy."""
  vals = collections.defaultdict(list)
  for t in trials:
    if t.usable and t.regime == regime:
      best = {}
      for a, n, e, acc in t.robustness:
        k = (a, n, round(e, 9))
        best[k] = min(acc, best.get(k, acc))
        best[(a, n, 0.0)] = t.clean
      for (a, n, e), acc in best.items():
        vals[(a, n, t.momentum, t.batch_size, e)].append(acc)
  out = {}
  for (a, n, m, b, e), v in sorted(vals.items()):
    out.setdefault((a, n), {}).setdefault(m, {}).setdefault(b, []).append((e, verdicts.mean_ci(v)))
  return out


def make_figures(trials, points, choice, regimes, out_dir):
  """Writes the PNGs; returns [(file name, caption)]."""
  figs = []
  clean = {r: verdicts.summarize(points, r, "clean") for r in regimes}
  adv = {r: verdicts.summarize(points, r, "adv") for r in regimes} if choice else {}
  figures.accuracy_vs_batch(clean, adv, os.path.join(out_dir, "accuracy_vs_batch.png"),
                            adv_label=choice.label if choice else "")
  figs.append(("accuracy_vs_batch.png", "Clean and adversarial test accuracy vs batch size, one line per "
               "momentum; mean ± 95% t-interval over seeds (no bar: one seed)."))
  if any(any(v) for v in adv.values()):
    for r in regimes:
      curves = adv_curves(trials, r)
      if curves:
        name = f"adversarial_vs_eps_{re.sub(r'[^A-Za-z0-9_]', '_', r)}.png"
        figures.adversarial_vs_eps(curves, os.path.join(out_dir, name), regime=r,
                                   mark=(choice.attack, choice.norm, choice.eps))
        figs.append((name, f"{r}: adversarial accuracy vs ε, one line per batch size (ε = 0 is clean "
                     "accuracy; dashed: the report's ε); mean ± 95% t-interval over seeds."))
  eig = {r: verdicts.summarize(points, r, "eig") for r in regimes}
  if any(any(v) for v in eig.values()):
    figures.eigenvalue_vs_batch(eig, os.path.join(out_dir, "top_eigenvalue_vs_batch.png"))
    figs.append(("top_eigenvalue_vs_batch.png", "Top Hessian eigenvalue of the training loss vs batch size "
                 "(log-log); mean ± 95% t-interval over seeds."))
  return figs


# ---------------------------------------------------------------------------------------------- document

def _fmt_num(x, unit, digits=2):
  if x is None:
    return "—"
  return f"{100 * x:+.{digits}f}" if unit.startswith("points") else f"{x:+.3f}"


def verdict_rows(claims):
  rows = []
  for c in claims:
    for comp in c.components:
      e = comp.estimate
      ci = f"[{_fmt_num(e.lo, comp.unit)}, {_fmt_num(e.hi, comp.unit)}]" if e and e.has_ci else "—"
      rows.append([comp.key, comp.label, comp.regime, comp.unit, _fmt_num(e and e.mean, comp.unit), ci,
                   str(e.n) if e else "0", f"**{comp.verdict}**"])
    rows.append([c.key, "**claim as a whole**", "", "", "", "", "", f"**{c.verdict}**"])
  return rows


def _grid_rows(trials, regimes):
  rows = []
  for r in regimes:
    for b in sorted({t.batch_size for t in trials if t.regime == r}):
      ts = [t for t in trials if t.regime == r and t.batch_size == b]
      lrs = sorted({t.lr_used for t in ts if t.lr_used is not None})
      count = lambda f: str(sum(1 for t in ts if f(t)))  # noqa: E731
      rows.append([r, str(b), ", ".join(f"{x:.4g}" for x in lrs) or "—",
                   ", ".join(f"{m:g}" for m in sorted({t.momentum for t in ts})),
                   count(lambda t: t.usable), count(lambda t: t.status == "ok" and t.diverged),
                   count(lambda t: t.status != "ok")])
  return rows


def _detail_rows(points, regimes):
  rows = []
  for r in regimes:
    for m in sorted({p.momentum for p in points if p.regime == r}):
      cells = []
      for metric, unit in (("clean", "points"), ("adv", "points"), ("log2_eig", "log2")):
        e = verdicts.mean_ci(verdicts.per_seed_slopes(points, r, metric, momentum=m))
        ci = f" [{_fmt_num(e.lo, unit)}, {_fmt_num(e.hi, unit)}]" if e and e.has_ci else ""
        cells.append(f"{_fmt_num(e.mean, unit)}{ci} (n={e.n})" if e else "—")
      rows.append([r, f"{m:g}"] + cells)
  return rows


def _setting_lines(trials, sweep, choice):
  def values(key):
    return sorted({json.dumps(t.hparams.get(key)) for t in trials if key in t.hparams})
  epochs = sorted({t.epochs for t in trials if t.epochs is not None}, key=str)
  if len(epochs) == 1:
    ep = (f"Every point was trained for the same number of epochs, **{epochs[0]}** (epochs, not steps, so "
          "that every batch size sees the data equally often: a fair comparison).")
  else:
    ep = f"**Warning: the epochs differ between trials ({', '.join(map(str, epochs)) or 'unknown'}); the " \
         "comparison across batch sizes is not fair.**"
  lines = [ep]
  for key in ("dataset", "model", "batchnorm", "lr_schedule", "nesterov", "weight_decay", "lr_scaling",
              "base_batch_size"):
    if values(key):
      lines.append(f"`{key}`: {', '.join(values(key))}")
  if choice:
    lines.append(f"Adversarial accuracy means **{choice.label}** ({choice.why}); the pixel scale is [0, 1].")
  else:
    lines.append("No robustness results: adversarial accuracy was not measured.")
  lines.append("Error bars and intervals: mean ± 95% Student-t confidence interval over seeds "
               "(t_{0.975, n−1} · sd / √n).")
  if sweep:
    lines.append("sweep.json: " + ", ".join(f"`{k}`={json.dumps(v)}" for k, v in sorted(sweep.items())
                                            if not isinstance(v, (dict, list)) or k in
                                            ("regimes", "batch_sizes", "momenta", "seeds")))
  return lines


def _missing_lines(trials, sweep, choice):
  missing, extra, src = missing_points(trials, sweep)
  lines = [f"Grid: {src}."]
  if not missing:
    lines.append("No grid point is missing.")
  else:
    groups = collections.defaultdict(list)
    for r, b, m, s in missing:
      groups[(r, m, b)].append(s)
    lines.append(f"**{len(missing)} grid point(s) have no result line:**")
    for k, ((r, m, b), seeds) in enumerate(sorted(groups.items())):
      if k == _MAX_LISTED:
        lines.append(f"… and {len(groups) - _MAX_LISTED} more groups")
        break
      lines.append(f"{r}, μ={m:g}, B={b}: seed(s) {', '.join(map(str, seeds))}")
  if extra:
    lines.append(f"{len(extra)} result(s) lie outside the sweep.json grid (used all the same).")
  usable = [t for t in trials if t.usable]
  no_adv = [t.trial_id for t in usable if choice and adv_accuracy(t, choice) is None]
  no_eig = [t.trial_id for t in usable if t.top_eig is None]
  if choice is None:
    lines.append("No trial has robustness results: the adversarial components cannot be judged.")
  elif no_adv:
    lines.append(f"{len(no_adv)} usable trial(s) lack {choice.label}: {', '.join(no_adv[:_MAX_LISTED])}")
  if no_eig:
    lines.append(f"{len(no_eig)} usable trial(s) lack a Hessian eigenvalue"
                 + (": " + ", ".join(no_eig[:_MAX_LISTED]) if len(no_eig) < len(usable) else " (all)."))
  return lines


def build_document(trials, sweep, choice, claims, figs, regimes, notes, sweep_dir):
  """The report as blocks: ("h", level, text) | ("p", text) | ("ul", [text]) | ("table", head, rows) |
  ("img", file, caption)."""
  points = to_points(trials, choice)
  m = verdicts
  rules = [f"{c.key}: {c.rule}." for cl in claims for c in cl.components]
  doc = [("h", 1, "tfrobust study report"),
         ("p", f"Sweep directory `{os.path.abspath(sweep_dir)}`; {len(trials)} trial(s): "
               f"{sum(t.usable for t in trials)} usable, {sum(t.status == 'ok' and t.diverged for t in trials)} "
               f"diverged, {sum(t.status != 'ok' for t in trials)} failed. Generated "
               f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}.")]
  if notes:
    doc.append(("ul", notes))
  doc += [("h", 2, "Verdicts"),
          ("table", ["component", "effect", "regime", "unit", "estimate", "95% CI", "seeds", "verdict"],
           verdict_rows(claims))]
  doc += [("p", f"**{c.key} — {c.verdict}.** {c.statement}") for c in claims]
  doc += [("h", 2, "How the effects are measured and judged"),
          ("ul", ["Each effect is computed within one seed, then averaged over seeds with a 95% Student-t "
                  "interval (t_{0.975, n−1} · sd / √n); diverged and failed trials are excluded.",
                  "Slope: for each seed and momentum, the least-squares slope of the metric against log2 B over "
                  "the batch sizes that ran, then averaged over the momenta of that seed. Accuracy slopes are "
                  "in percentage points per doubling of B; the eigenvalue slope is Δlog2(top eigenvalue) per "
                  "doubling (the exponent k of λ ∝ B^k).",
                  "Spread: per seed, max − min over B of adversarial accuracy (averaged over momenta at each B).",
                  "C3: per seed and regime, the momentum effect M = mean over B of [accuracy(high μ) − "
                  "accuracy(low μ)] at the B where both ran; the judged effect is E = s_f·M_fixed_lr − "
                  "s_r·M_constant_ratio per seed, s_f and s_r the signs of the two mean effects (the difference "
                  "of their magnitudes; positive: momentum matters more at a fixed η).",
                  f"Margins: {100 * m.ACC_MARGIN:g} accuracy point per doubling of B (slopes), "
                  f"{m.EIG_MARGIN:g} in log2 eigenvalue per doubling, {100 * m.MOMENTUM_MARGIN:g} point for C3; "
                  f"at least {m.MIN_SEEDS} seeds are needed for a verdict."]),
          ("p", "**Rules.** " + m.OVERALL_RULE),
          ("ul", rules)]
  c3 = [c.note for c in claims[2].components if c.note]
  if c3:
    doc += [("p", "C3 momentum effects, mean [95% CI] in points: " + "; ".join(c3) + ".")]
  doc += [("h", 2, "Setting"), ("ul", _setting_lines(trials, sweep, choice)),
          ("table", ["regime", "B", "η used", "μ", "usable", "diverged", "failed"], _grid_rows(trials, regimes)),
          ("h", 2, "Figures")]
  doc += [("img", name, caption) for name, caption in figs]
  doc += [("h", 2, "Slopes per regime and momentum (descriptive)"),
          ("table", ["regime", "μ", "clean acc. slope (points/doubling)", "adv. acc. slope (points/doubling)",
                     "log2 top eig. slope (per doubling)"], _detail_rows(points, regimes))]
  div = [t for t in trials if t.status == "ok" and t.diverged]
  doc += [("h", 2, "Diverged runs (excluded from every fit)")]
  doc += [("table", ["trial", "regime", "B", "μ", "seed", "η used"],
           [[t.trial_id, t.regime, str(t.batch_size), f"{t.momentum:g}", str(t.seed),
             f"{t.lr_used:.4g}" if t.lr_used is not None else "—"] for t in div])] if div else [("p", "None.")]
  failed = [t for t in trials if t.status != "ok"]
  doc += [("h", 2, "Failed trials")]
  doc += [("table", ["trial", "regime", "B", "μ", "seed", "error"],
           [[t.trial_id, t.regime, str(t.batch_size), f"{t.momentum:g}", str(t.seed),
             (t.error.strip().splitlines() or ["?"])[-1][:200]] for t in failed])] if failed else [("p", "None.")]
  doc += [("h", 2, "What is missing"), ("ul", _missing_lines(trials, sweep, choice))]
  return doc


def _md_cell(s):
  return str(s).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc):
  out = []
  for block in doc:
    kind = block[0]
    if kind == "h":
      out.append("#" * block[1] + " " + block[2])
    elif kind == "p":
      out.append(block[1])
    elif kind == "ul":
      out.append("\n".join(f"- {item}" for item in block[1]))
    elif kind == "table":
      head, rows = block[1], block[2]
      out.append("\n".join(["| " + " | ".join(map(_md_cell, head)) + " |", "|" + "---|" * len(head)]
                           + ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]))
    elif kind == "img":
      out.append(f"![{block[2]}]({block[1]})\n\n*{block[2]}*")
  return "\n\n".join(out) + "\n"


def _inline(text):
  s = html.escape(str(text))
  s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
  return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def to_html(doc, out_dir):
  """Self-contained HTML: figures embedded as base64 PNG."""
  body = []
  for block in doc:
    kind = block[0]
    if kind == "h":
      body.append(f"<h{block[1]}>{_inline(block[2])}</h{block[1]}>")
    elif kind == "p":
      body.append(f"<p>{_inline(block[1])}</p>")
    elif kind == "ul":
      body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + "</ul>")
    elif kind == "table":
      head = "".join(f"<th>{_inline(h)}</th>" for h in block[1])
      rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in block[2])
      body.append(f"<table><tr>{head}</tr>{rows}</table>")
    elif kind == "img":
      with open(os.path.join(out_dir, block[1]), "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
      body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block[1])}">'
                  f"<figcaption>{_inline(block[2])}</figcaption></figure>")
  style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
           "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
           "font-size:90%}img{max-width:100%}figcaption{font-style:italic}")
  return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>tfrobust study report</title>"
          f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _write_atomically(path, text):
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(text)
  os.replace(tmp, path)


def write_report(sweep_dir):
  """Writes sweep_dir/report/{report.md, report.html, *.png}; returns the path of report.md."""
  trials, notes = load_results(sweep_dir)
  sweep = load_sweep(sweep_dir, notes)
  choice = choose_adv(trials, sweep)
  regimes = regimes_of(trials, sweep)
  points = to_points(trials, choice)
  claims = verdicts.evaluate(points)
  out_dir = os.path.join(sweep_dir, "report")
  os.makedirs(out_dir, exist_ok=True)
  figs = make_figures(trials, points, choice, regimes, out_dir) if points else []
  doc = build_document(trials, sweep, choice, claims, figs, regimes, notes, sweep_dir)
  md_path = os.path.join(out_dir, "report.md")
  _write_atomically(md_path, to_markdown(doc))
  _write_atomically(os.path.join(out_dir, "report.html"), to_html(doc, out_dir))
  return md_path


# ---------------------------------------------------------------------------------------------- entry point

def main(argv=None):
  """`python -m tfrobust.report --sweep_dir=DIR`; bad input: one line on stderr, exit status 2."""
  from absl import flags  # a private FlagValues, so that a sweep importing this module defines no flags
  fv = flags.FlagValues()
  flags.DEFINE_string("sweep_dir", None, "Sweep directory holding results.jsonl (and sweep.json).", flag_values=fv)
  argv = sys.argv if argv is None else argv
  try:
    if any(a in ("-h", "--help", "--helpfull") for a in argv[1:]):
      print(f"usage: python -m tfrobust.report --sweep_dir=DIR\n{fv.get_help()}")
      return 0
    rest = fv(argv)[1:]
    if rest:
      raise UsageError(f"{rest[0]}: unexpected argument (usage: python -m tfrobust.report --sweep_dir=DIR)")
    if not fv.sweep_dir:
      raise UsageError("--sweep_dir: required (the sweep directory that holds results.jsonl)")
    path = write_report(fv.sweep_dir)
  except (UsageError, flags.Error) as e:
    print(f"error: {(str(e).splitlines() or ['?'])[0]}", file=sys.stderr)
    return 2
  print(f"report: {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
