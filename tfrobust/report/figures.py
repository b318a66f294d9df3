"""The report's figures (PNG, matplotlib Agg): accuracy and curvature vs batch size, accuracy vs ε, and every
trial's accuracy and λ_max against its final training loss (the under-training confound, seen directly).

Summaries come in reduced to mean ± 95% t-interval over seeds (`stats.Estimate`). Accuracies come in as
fractions and are drawn in percent, with error bars cut to [0, 100]%. Log axes label decades only (no
crowded minor-tick labels). Every PNG is written to a temporary file and renamed into place.
"""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import LogLocator, NullFormatter  # noqa: E402

from tfrobust import io  # noqa: E402

_DPI = 100
MARKERS = {"fixed_lr": "o", "constant_ratio": "s", "sqrt": "^"}


def _errorbar(ax, xs, ests, *, scale=1.0, label=None, color=None, log_y=False, bounds=None):
  """Mean with 95% CI bars (no bar where there is a single seed); bounds=(lo, hi) cuts the bars."""
  ys = [scale * e.mean for e in ests]
  los = [scale * e.lo if e.has_ci else y for e, y in zip(ests, ys)]
  his = [scale * e.hi if e.has_ci else y for e, y in zip(ests, ys)]
  if bounds is not None:
    los = [min(max(lo, bounds[0]), y) for lo, y in zip(los, ys)]
    his = [max(min(hi, bounds[1]), y) for hi, y in zip(his, ys)]
  if log_y:  # a CI reaching below 0 cannot be drawn on a log axis: stop it just above 0
    los = [max(lo, 0.001 * y) for lo, y in zip(los, ys)]
  ax.errorbar(xs, ys, yerr=[[y - lo for y, lo in zip(ys, los)], [hi - y for y, hi in zip(ys, his)]], marker="o",
              ms=4, capsize=3, label=label, color=color)


def _log2_x(ax, batch_sizes):
  ax.set_xscale("log", base=2)
  ticks = sorted(set(batch_sizes))
  ax.set_xticks(ticks)
  ax.set_xticklabels([str(b) for b in ticks])
  ax.minorticks_off()
  ax.set_xlabel("batch size B (log2 scale)")


def decades(ax, axis, values):
  """Log10 scale labelled at whole decades only, the limits widened to the enclosing decades so that at
  least two labels show."""
  vals = [v for v in values if v > 0 and math.isfinite(v)]
  if not vals:
    return
  lo, hi = math.floor(math.log10(min(vals))), math.ceil(math.log10(max(vals)))
  hi = max(hi, lo + 1)
  target = ax.xaxis if axis == "x" else ax.yaxis
  (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
  (ax.set_xlim if axis == "x" else ax.set_ylim)(10.0 ** lo, 10.0 ** hi)
  target.set_major_locator(LogLocator(base=10, numticks=12))
  target.set_minor_locator(LogLocator(base=10, subs=tuple(range(2, 10)), numticks=12))
  target.set_minor_formatter(NullFormatter())


def save(fig, path):
  """tight_layout, then the PNG written atomically (tfrobust.io): a reader never sees half a figure."""
  fig.tight_layout()
  io.write_png(fig, path, dpi=_DPI)
  plt.close(fig)
  return path


def accuracy_vs_batch(clean, adv, path, *, adv_label):
  """Rows: regimes; columns: clean and adversarial test accuracy vs B; one line per momentum.

  clean, adv: {regime: {momentum: [(B, Estimate)]}}; adv may be empty (robustness not measured).
  """
  regimes = list(clean)
  cols = [("clean test accuracy (%)", clean)] + ([(f"adversarial accuracy (%)\n{adv_label}", adv)] if adv else [])
  fig, axes = plt.subplots(len(regimes), len(cols), figsize=(5.2 * len(cols), 3.4 * len(regimes)),
                           squeeze=False)
  for i, regime in enumerate(regimes):
    for j, (ylabel, data) in enumerate(cols):
      ax = axes[i][j]
      bs = []
      for mom, rows in sorted(data.get(regime, {}).items()):
        if rows:
          _errorbar(ax, [b for b, _ in rows], [e for _, e in rows], scale=100.0, label=f"μ={mom:g}",
                    bounds=(0.0, 100.0))
          bs += [b for b, _ in rows]
      if bs:
        _log2_x(ax, bs)
        ax.legend(fontsize=8)
      ax.set_ylabel(ylabel, fontsize=9)
      ax.set_title(regime, fontsize=10)
      ax.grid(alpha=0.3)
  return save(fig, path)


def eigenvalue_vs_batch(eig, path):
  """One panel per regime: λ_max vs B (log-log), one line per momentum; only positive means can be drawn.

  eig: {regime: {momentum: [(B, Estimate)]}}.
  """
  regimes = list(eig)
  fig, axes = plt.subplots(1, len(regimes), figsize=(4.6 * len(regimes), 3.6), squeeze=False)
  for ax, regime in zip(axes[0], regimes):
    bs, ys = [], []
    for mom, rows in sorted(eig[regime].items()):
      rows = [(b, e) for b, e in rows if e.mean > 0]
      if rows:
        _errorbar(ax, [b for b, _ in rows], [e for _, e in rows], label=f"μ={mom:g}", log_y=True)
        bs += [b for b, _ in rows]
        ys += [v for _, e in rows for v in (e.mean, e.hi if e.has_ci else e.mean)]
    if bs:
      _log2_x(ax, bs)
      decades(ax, "y", ys)
      ax.legend(fontsize=8)
    ax.set_ylabel("λ_max, top Hessian eigenvalue (training loss)", fontsize=9)
    ax.set_title(regime, fontsize=10)
    ax.grid(alpha=0.3, which="major")
  return save(fig, path)


def adversarial_vs_eps(curves, path, *, regime, mark=None):
  """One figure per regime. Rows: momenta; columns: attack × norm (PGD first); one line per batch size.

  curves: {(attack, norm): {momentum: {B: [(eps, Estimate)]}}}, ε on the [0, 1] pixel scale; mark = (attack,
  norm, ε): the report's adversarial accuracy, drawn as a dashed line in that panel.
  """
  attacks = sorted(curves, key=lambda k: (k[0] != "pgd", k[1] != "inf", k))
  momenta = sorted({m for a in attacks for m in curves[a]})
  all_b = sorted({b for a in attacks for m in curves[a] for b in curves[a][m]})
  cmap = plt.get_cmap("viridis")
  color = {b: cmap(k / max(1, len(all_b) - 1)) for k, b in enumerate(all_b)}
  fig, axes = plt.subplots(len(momenta), len(attacks), figsize=(4.4 * len(attacks), 3.3 * len(momenta)),
                           squeeze=False)
  for i, mom in enumerate(momenta):
    for j, (attack, norm) in enumerate(attacks):
      ax = axes[i][j]
      for b, rows in sorted(curves[(attack, norm)].get(mom, {}).items()):
        if rows:
          _errorbar(ax, [e for e, _ in rows], [est for _, est in rows], scale=100.0, label=f"B={b}",
                    color=color[b], bounds=(0.0, 100.0))
      if mark is not None and mark[:2] == (attack, norm):
        ax.axvline(mark[2], color="gray", ls="--", lw=0.8)
      norm_name = "L∞" if norm == "inf" else f"L{norm}"
      ax.set_title(f"{regime}, μ={mom:g}: {attack.upper()} {norm_name}", fontsize=10)
      ax.set_xlabel("ε (pixel scale [0, 1])")
      ax.set_ylabel("accuracy (%)")
      ax.set_ylim(-2, 102)
      ax.grid(alpha=0.3)
      if ax.has_data():
        ax.legend(fontsize=7, ncol=2)
  return save(fig, path)


def versus_train_loss(rows, path, *, adv_label):
  """Clean accuracy, adversarial accuracy and λ_max of every trial against its final training loss (log x).

  rows: [(regime, B, train_loss, clean, adv, λ_max, trained)] with accuracies as fractions (None: not
  measured). Colour: B; marker: regime; hollow: not trained. λ_max ≤ 0 cannot be drawn on the log axis.
  """
  rows = [r for r in rows if r[2] is not None and r[2] > 0]
  bs = sorted({r[1] for r in rows})
  cmap = plt.get_cmap("viridis")
  color = {b: cmap(k / max(1, len(bs) - 1)) for k, b in enumerate(bs)}
  panels = [("clean test accuracy (%)", 3, 100.0), (f"adversarial accuracy (%)\n{adv_label}", 4, 100.0),
            ("λ_max (log scale)", 5, 1.0)]
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), squeeze=False)
  for ax, (ylabel, col, scale) in zip(axes[0], panels):
    groups = {}
    for r in rows:
      if r[col] is not None and not (col == 5 and r[col] <= 0):
        groups.setdefault((r[0], r[1], r[6]), []).append((r[2], scale * r[col]))
    ys = [y for pts in groups.values() for _, y in pts]
    for (regime, b, is_trained), pts in sorted(groups.items()):
      c = color[b]
      ax.scatter([x for x, _ in pts], [y for _, y in pts], marker=MARKERS.get(regime, "D"), s=30, edgecolors=[c],
                 linewidths=1.2, facecolors=[c] if is_trained else ["none"])
    decades(ax, "x", [r[2] for r in rows])
    if col == 5:
      decades(ax, "y", ys)
    else:
      ax.set_ylim(-2, 102)
    ax.set_xlabel("final training loss (nats, log scale)")
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(alpha=0.3, which="major")
  handles = [Line2D([], [], ls="", marker="o", color=color[b], label=f"B={b}") for b in bs]
  handles += [Line2D([], [], ls="", marker=MARKERS.get(g, "D"), color="gray", label=g)
              for g in sorted({r[0] for r in rows})]
  handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none", color="gray", label="not trained"))
  axes[0][2].legend(handles=handles, fontsize=7, loc="best")
  return save(fig, path)
