"""The report's sections beyond the claims' verdicts: every trial against the SGD temperature (C4's figure), the
rank correlation of curvature with robustness (correlation.py: a table and a figure) and the ε-free robustness
statistics per cell (epsfree.py). Blocks in render.py's format, and the figures they show."""

import os
import statistics

from tfrobust.report import correlation, epsfree, quality, temperature


def _rows(points):
  out = []
  for p in points:
    if p.kind not in quality.IN_FITS:
      continue
    t = temperature.log2_temperature(p)
    out.append({"regime": p.regime, "b": p.batch_size, "mu": p.momentum, "T": None if t is None else 2.0 ** t,
                "clean": p.clean, "adv": p.adv, "top_eig": p.top_eig, "input_eig": p.input_eig,
                "grad_norm": p.grad_norm, "train_loss": p.train_loss})
  return out


def make_figures(points, out_dir, adv_label):
  """Writes the C4 and curvature scatter figures; returns [(file name, caption)]."""
  from tfrobust.report import scatter  # matplotlib only when figures are drawn
  rows, figs = _rows(points), []
  if any(r["T"] for r in rows):
    scatter.panels([dict(r, x=r["T"]) for r in rows], os.path.join(out_dir, "versus_temperature.png"),
                   x_label="T = η/(B(1−μ)) (log2 scale)", log_x=2,
                   ys=[("clean", "clean test accuracy (%)", 100.0, False),
                       ("adv", f"adversarial accuracy (%)\n{adv_label}", 100.0, False),
                       ("top_eig", "λ_max (log scale)", 1.0, True)])
    figs.append(("versus_temperature.png", "C4: every usable or doubtful trial against the SGD temperature "
                 "T = η/(B(1−μ)). Colour: B; marker: regime; filled: the highest momentum, hollow: the others. If "
                 "T explained everything, the markers would fall on one curve whatever their colour and shape."))
  for key, label in (("top_eig", "λ_max"), ("input_eig", "input-Hessian λ_max"),
                     ("grad_norm", "mean input-gradient norm")):
    if any(r[key] is not None and r["adv"] is not None for r in rows):
      name = f"robustness_vs_{key}.png"
      scatter.panels([dict(r, x=r[key]) for r in rows], os.path.join(out_dir, name), x_label=f"{label} (log scale)",
                     log_x=True, ys=[("adv", f"adversarial accuracy (%)\n{adv_label}", 100.0, False)])
      figs.append((name, f"Adversarial accuracy against {label}, every usable or doubtful trial (colour: B; "
                   "marker: regime; filled: the highest momentum). The Spearman correlations are in the table "
                   "\"Curvature and robustness\"."))
  return figs


def _median(values):
  vals = [v for v in values if v is not None]
  return statistics.median(vals) if vals else None


def eps_free_rows(points, regimes):
  """Per regime × B × μ: trials, the median over seeds of each trial's median and mean fooling ε, of the share
  never fooled and of the area under the robust-accuracy curve."""
  out = []
  for r in regimes:
    cells = sorted({(p.batch_size, p.momentum) for p in points if p.regime == r and p.kind in quality.IN_FITS})
    for b, mu in cells:
      fs = [p.eps_free for p in points if (p.regime, p.batch_size, p.momentum) == (r, b, mu)
            and p.kind in quality.IN_FITS and p.eps_free is not None]
      if not fs:
        continue
      med = _median([f.median_fool_eps for f in fs])
      out.append([r, str(b), f"{mu:g}", str(len(fs)), epsfree.fmt_eps(med),
                  f"{_median([f.mean_fool_eps for f in fs]):.3g}",
                  f"{100 * _median([f.never_fooled for f in fs]):.1f}%",
                  f"{100 * _median([f.auc for f in fs]):.1f}%"])
  return out


def blocks(points, regimes):
  rows = _rows(points)
  doc = [("h", 2, "Curvature and robustness"),
         ("p", " ".join(correlation.__doc__.split()).replace("REPS replicates",  # the docstring names the constant
                                                             f"{correlation.REPS:,} replicates")),
         ("table", correlation.HEAD, correlation.table(rows, regimes)
          or [["—", "no trial recorded both a curvature measure and an adversarial accuracy", "", "", ""]]),
         ("h", 2, "ε-free robustness"),
         ("p", " ".join(epsfree.__doc__.split("\n\n")[0].split())),
         ("ul", list(epsfree.STATISTICS))]
  eps_rows = eps_free_rows(points, regimes)
  if eps_rows:
    doc.append(("table", ["regime", "B", "μ", "trials", "median fooling ε", "mean fooling ε (censored)",
                          "never fooled", "area (mean robust accuracy over [0, ε_max])"], eps_rows))
    doc.append(("p", "Each cell: the median over its seeds of the trial's statistic. The verdicts can judge the "
                     "area as a metric (`adv_auc` in effects.measure, resampled per example like an accuracy)."))
  else:
    doc.append(("p", "No trial has per-example attack curves (examples.npz): the ε-free statistics need them."))
  return doc
