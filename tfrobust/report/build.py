"""The study report: `write_report(DIR)` (what `python -m tfrobust.report --sweep_dir=DIR` and the end of a study
call) reads DIR/results.jsonl and writes DIR/report/.

verdicts.json holds one row per claim component and control (docs/verdicts.md), trials.csv one row per trial
(docs/trials_csv.md); report.md, report.html (figures embedded) and summary.md (the fragment README.md quotes)
are rendered from those same rows. Trials are sorted into usable, doubtful, collapsed, diverged and failed, and
each is listed with its reason. No TensorFlow: the report runs anywhere in a few seconds.
"""

import collections
import dataclasses
import datetime
import os
import re
import sys
from typing import List, Optional

from tfrobust import io
from tfrobust.report import claims, document, quality, render, sequential, stats, trials_csv, verdicts
from tfrobust.report import data as report_data
from tfrobust.records import names as record_names
from tfrobust.records import sweep as sweep_records
from tfrobust.records.trial import choose_adv
from tfrobust.report.data import data_notes, regimes_of, to_observations


@dataclasses.dataclass
class Context:
  """Everything the document is built from."""
  sweep_dir: str
  trials: list
  points: list
  rows: List[dict]
  sweep: Optional[dict]
  choice: object
  regimes: list
  notes: list
  data_notes: list
  budget_text: str
  margins: dict
  min_seeds: int
  trained_loss: float = quality.TRAINED_LOSS
  budget: str = "epochs"  # quality.budget_of: epochs | steps | loss
  figs: list = dataclasses.field(default_factory=list)
  generated: str = ""


# ---------------------------------------------------------------------------------------------- figures

def adv_curves(trials, fit_ids, regime):
  """{(attack, norm): {μ: {B: [(ε, Estimate over seeds)]}}} with ε = 0 taken from clean accuracy (fitted
  trials only; intervals cut to [0, 1])."""
  vals = collections.defaultdict(list)
  for t in trials:
    if t.trial_id in fit_ids and t.regime == regime:
      best = {}
      for a, n, e, acc, _ in t.robustness:
        k = (a, n, round(e, 9))
        best[k] = min(acc, best.get(k, acc))
        best[(a, n, 0.0)] = t.clean
      for (a, n, e), acc in best.items():
        vals[(a, n, t.momentum, t.batch_size, e)].append(acc)
  out = {}
  for (a, n, m, b, e), v in sorted(vals.items()):
    out.setdefault((a, n), {}).setdefault(m, {}).setdefault(b, []).append((e, stats.clip(stats.mean_ci(v))))
  return out


def make_figures(ctx, out_dir):
  """Writes the PNGs; returns [(file name, caption)]. matplotlib is imported here: a refused input exits fast."""
  from tfrobust.report import figures, verdict_figures
  pts, choice, regimes, figs = ctx.points, ctx.choice, ctx.regimes, []
  if verdict_figures.verdict_picture(ctx.rows, os.path.join(out_dir, "verdicts.png")):
    figs.append(("verdicts.png", "The verdicts at a glance (control all): every judged part of every component — "
                 "per momentum for C1, per B and momentum for C2 — as estimate (dot) and 95% paired "
                 "interval (bar), coloured by the part's verdict, against the shaded ± margin band; each title "
                 "gives the component's verdict and, after the dash, its verdict on the other controls. An arrow: "
                 "the interval goes on beyond the drawn range."))
  clean = {r: verdicts.summarize(pts, r, "clean") for r in regimes}
  adv = {r: verdicts.summarize(pts, r, "adv") for r in regimes} if choice else {}
  figures.accuracy_vs_batch(clean, adv, os.path.join(out_dir, "accuracy_vs_batch.png"),
                            adv_label=choice.label if choice else "")
  figs.append(("accuracy_vs_batch.png", "Clean and adversarial test accuracy vs batch size, one line per "
               "momentum; mean ± 95% t-interval over seeds, cut to [0, 100]% (no bar: one seed); usable and "
               "doubtful trials."))
  if verdict_figures.c2_contrasts(ctx.rows, os.path.join(out_dir, "c2_contrasts.png")):
    figs.append(("c2_contrasts.png", "C2 at constant η/B: acc(B) − acc(B_ref) per momentum, with the simultaneous "
                 "95% intervals the verdict uses, against the shaded ± margin band (points; B_ref the smallest B)."))
  if verdict_figures.c3_interaction(pts, os.path.join(out_dir, "c3_interaction.png"),
                                    adv_label=choice.label if choice else "not measured"):
    figs.append(("c3_interaction.png", "C3: momentum's gain (accuracy at the highest μ minus the lowest, same seed "
                 "and B) per regime against B; mean ± 95% t-interval over seeds, usable and doubtful trials. C3 "
                 "claims the fixed_lr line lies above the constant_ratio line."))
  fit_ids = {p.trial_id for p in pts if p.kind in quality.IN_FITS}
  if any(any(v) for v in adv.values()):
    for r in regimes:
      curves = adv_curves(ctx.trials, fit_ids, r)
      if curves:
        name = f"adversarial_vs_eps_{re.sub(r'[^A-Za-z0-9_]', '_', r)}.png"
        figures.adversarial_vs_eps(curves, os.path.join(out_dir, name), regime=r,
                                   mark=(choice.attack, choice.norm, choice.eps))
        figs.append((name, f"{r}: adversarial accuracy vs ε, one panel per momentum and batch size; PGD (the "
                     "headline attack) in black with its 95% t-interval over seeds as a band, the other attacks "
                     "lighter behind it; ε = 0 is clean accuracy; dotted: the report's ε."))
  eig = {r: verdicts.summarize(pts, r, "eig") for r in regimes}
  nonpos = sum(1 for p in pts if p.trial_id in fit_ids and p.top_eig is not None and p.top_eig <= 0)
  drop = f" {nonpos} trial(s) with λ_max ≤ 0 are not drawn (listed below)." if nonpos else ""
  if any(any(v) for v in eig.values()):
    figures.eigenvalue_vs_batch(eig, os.path.join(out_dir, "top_eigenvalue_vs_batch.png"))
    figs.append(("top_eigenvalue_vs_batch.png", "λ_max, the top Hessian eigenvalue of the training loss, vs "
                 "batch size (log-log); mean ± 95% t-interval over seeds." + drop))
  loss_rows = [(p.regime, p.batch_size, p.train_loss, p.clean, p.adv, p.top_eig, bool(p.trained))
               for p in pts if p.kind in quality.IN_FITS + (quality.COLLAPSED,)]
  if any(r[2] is not None and r[2] > 0 for r in loss_rows):
    figures.versus_train_loss(loss_rows, os.path.join(out_dir, "versus_train_loss.png"),
                              adv_label=choice.label if choice else "not measured")
    figs.append(("versus_train_loss.png", "Every usable, doubtful or collapsed trial: clean accuracy, "
                 "adversarial accuracy and λ_max against its final training loss (log x). Colour: B; marker: "
                 "regime; filled: trained, hollow: not trained. Compare B at equal training loss before reading a "
                 "trend as an effect of B." + drop))
  from tfrobust.report import beyond
  figs += beyond.make_figures(pts, out_dir, choice.label if choice else "not measured")
  return figs


# ---------------------------------------------------------------------------------------------- writing

def _sweep_or_note(sweep_dir, notes):
  """sweep.json, or None with a note when it is unreadable (the grid is then inferred from the results)."""
  try:
    return sweep_records.read_sweep(sweep_dir)
  except ValueError:
    notes.append(f"{record_names.SWEEP_FILE} could not be read; the grid was inferred from the results.")
    return None


def build(sweep_dir, *, acc_margin=claims.ACC_MARGIN, eig_margin=claims.EIG_MARGIN,
          momentum_margin=claims.MOMENTUM_MARGIN, c2_margin=claims.C2_MARGIN, min_seeds=claims.MIN_SEEDS,
          trained_loss=quality.TRAINED_LOSS, seeds=None):
  """Reads and judges the sweep (writes nothing): the Context of its report. UsageError on bad input.
  seeds: only the trials of seeds below it (a look of a --seeds=auto study judged on its own points, whatever
  points of the next look are already written)."""
  margins = verdicts.margins(acc_margin=acc_margin, eig_margin=eig_margin, momentum_margin=momentum_margin,
                             c2_margin=c2_margin)
  trained_loss = quality.check_trained_loss(trained_loss)
  trials, notes = sweep_records.load_trials(sweep_dir)
  if seeds is not None:
    trials = [t for t in trials if int(t.hparams.get("seed", 0)) < seeds]
  for n in notes:
    print(f"warning: {n}", file=sys.stderr)
  budget, budget_text = quality.budget_of(trials)
  sweep = _sweep_or_note(sweep_dir, notes)
  choice = choose_adv(trials, (sweep or {}).get("report_eps"))
  points = to_observations(trials, choice, report_data.read_examples(sweep_dir, trials), trained_loss=trained_loss,
                           lines=report_data.read_lines(sweep_dir))
  kw = dict(acc_margin=margins["acc"], eig_margin=margins["eig"], momentum_margin=margins["momentum"],
            c2_margin=margins["c2"], min_seeds=min_seeds, sweep=sweep)
  plan = sequential.plan_of(sweep)
  rows = sequential.judge(points, plan, **kw) if plan else verdicts.judge_claims(points, **kw)
  return Context(os.path.normpath(sweep_dir), trials, points, rows, sweep, choice, regimes_of(trials, sweep), notes,
                 data_notes(trials, points), budget_text, margins, min_seeds, trained_loss, budget)


def write_report(sweep_dir, *, with_figures=True, **kw):
  """Writes sweep_dir/report/{verdicts.json, trials.csv, report.md, report.html, summary.md, *.png}; returns
  report.md's path. Everything is checked before report/ is created: bad input leaves nothing behind.
  with_figures=False skips the PNGs (most of the run time) and leaves them out of the documents."""
  ctx = build(sweep_dir, **kw)
  out_dir = os.path.join(sweep_dir, record_names.REPORT_DIR)
  os.makedirs(out_dir, exist_ok=True)
  if with_figures and any(p.kind in quality.IN_FITS for p in ctx.points):
    ctx.figs = make_figures(ctx, out_dir)
  ctx.generated = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}"
  io.write_json(os.path.join(out_dir, "verdicts.json"), ctx.rows)
  io.write_text(os.path.join(out_dir, "trials.csv"),
                trials_csv.to_text(*trials_csv.rows(ctx.trials, ctx.points, report_data.read_lines(sweep_dir))))
  doc = document.build_document(ctx)
  md_path = io.write_text(os.path.join(out_dir, "report.md"), render.to_markdown(doc))
  io.write_text(os.path.join(out_dir, "report.html"), render.to_html(doc, out_dir))
  io.write_text(os.path.join(out_dir, "summary.md"), document.summary_markdown(ctx.rows, ctx.points, ctx.regimes))
  return md_path
