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
from matplotlib.patches import Patch  # noqa: E402  (re-exported for the other figure modules)
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


def fit_percent(ax, values, *, min_span=5.0):
  """y-limits fitted to the drawn values (percent), padded by 8%, at least min_span points tall, never beyond
  [−2, 102]: a 2-point effect must not be a flat band on a 0–100% axis."""
  vals = [v for v in values if v is not None and math.isfinite(v)]
  if not vals:
    return
  lo, hi = min(vals), max(vals)
  mid, half = (lo + hi) / 2, max(hi - lo, min_span) / 2 * 1.08
  ax.set_ylim(max(-2.0, mid - half), min(102.0, mid + half))


def save(fig, path, layout=True):
  """tight_layout (unless the caller laid the figure out), then the PNG written atomically (tfrobust.io): a reader
  never sees half a figure."""
  if layout:
    fig.tight_layout()
  io.write_png(fig, path, dpi=_DPI)
  plt.close(fig)
  return path


def legend_handles(bs, color, regimes, fills):
  """Colour swatches for B, black outlined shapes for the regimes (marker = regime), and filled/hollow patches
  for what the fill means (fills: ((\"filled\" | \"hollow\", meaning), ...)): no two entries look alike."""
  handles = [Patch(color=color[b], label=f"B = {b}") for b in bs]
  handles += [Line2D([], [], ls="", marker=MARKERS.get(g, "D"), markeredgecolor="black", markerfacecolor="white",
                     label=f"regime: {g}") for g in regimes]
  handles += [Patch(facecolor="gray" if kind == "filled" else "none", edgecolor="gray", label=f"{kind}: {text}")
              for kind, text in fills]
  return handles


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
      bs, ys = [], []
      for mom, rows in sorted(data.get(regime, {}).items()):
        if rows:
          _errorbar(ax, [b for b, _ in rows], [e for _, e in rows], scale=100.0, label=f"μ={mom:g}",
                    bounds=(0.0, 100.0))
          bs += [b for b, _ in rows]
          ys += [100.0 * v for _, e in rows for v in ((e.lo, e.hi) if e.has_ci else (e.mean,))]
      if bs:
        _log2_x(ax, bs)
        fit_percent(ax, [min(max(y, 0.0), 100.0) for y in ys])
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


HEADLINE = "pgd"  # the attack drawn in front; the others lighter behind it


def adversarial_vs_eps(curves, path, *, regime, mark=None):
  """One figure per regime. Rows: momenta; columns: batch sizes; one line per attack × norm, PGD (the headline
  attack) in front and the others lighter; L2 dashed.

  curves: {(attack, norm): {momentum: {B: [(eps, Estimate)]}}}, ε on the [0, 1] pixel scale; mark = (attack,
  norm, ε): the report's adversarial accuracy, drawn as a dotted vertical line.
  """
  attacks = sorted(curves, key=lambda k: (k[0] != HEADLINE, k[1] != "inf", k))
  momenta = sorted({m for a in attacks for m in curves[a]})
  all_b = sorted({b for a in attacks for m in curves[a] for b in curves[a][m]})
  others = [a for a in attacks if a[0] != HEADLINE]
  light = {a: plt.get_cmap("tab10")(k + 1) for k, a in enumerate(others)}
  fig, axes = plt.subplots(len(momenta), len(all_b), figsize=(3.0 * len(all_b), 2.7 * len(momenta) + 0.5),
                           squeeze=False, sharex=True, sharey=True)
  for i, mom in enumerate(momenta):
    for j, b in enumerate(all_b):
      ax = axes[i][j]
      for attack, norm in reversed(attacks):  # the headline last: drawn on top
        rows = curves[(attack, norm)].get(mom, {}).get(b)
        if not rows:
          continue
        head = attack == HEADLINE
        name = f"{attack.upper()} {'L∞' if norm == 'inf' else 'L' + str(norm)}"
        xs, ys = [e for e, _ in rows], [100.0 * est.mean for _, est in rows]
        ax.plot(xs, ys, ls="-" if norm == "inf" else "--", marker="o" if head else None, ms=3,
                color="black" if head else light[(attack, norm)], lw=2.0 if head else 1.0,
                alpha=1.0 if head else 0.55, zorder=3 if head else 2, label=name)
        if head:
          lo = [100.0 * (est.lo if est.has_ci else est.mean) for _, est in rows]
          hi = [100.0 * (est.hi if est.has_ci else est.mean) for _, est in rows]
          ax.fill_between(xs, [max(v, 0.0) for v in lo], [min(v, 100.0) for v in hi], color="black", alpha=0.12,
                          lw=0, zorder=1)
      if mark is not None:
        ax.axvline(mark[2], color="gray", ls=":", lw=0.9)
      ax.set_title(f"μ = {mom:g}, B = {b}", fontsize=9)
      ax.set_ylim(-2, 102)
      ax.grid(alpha=0.3)
      if i == len(momenta) - 1:
        ax.set_xlabel("ε (pixel scale [0, 1])", fontsize=8)
      if j == 0:
        ax.set_ylabel("accuracy (%)", fontsize=8)
  handles, labels = next(((h, lab) for h, lab in (ax.get_legend_handles_labels() for ax in axes.flat) if h),
                         ([], []))
  order = sorted(range(len(labels)), key=lambda k: not labels[k].startswith(HEADLINE.upper()))
  fig.legend([handles[k] for k in order], [labels[k] for k in order], loc="upper center", ncol=len(labels) or 1,
             fontsize=8, frameon=False, title=f"{regime}: accuracy vs ε (ε = 0: clean; band: PGD's 95% interval)",
             title_fontsize=9)
  fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / (2.7 * len(momenta) + 0.5)))
  return save(fig, path, layout=False)


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
      fit_percent(ax, ys)
    ax.set_xlabel("final training loss (nats, log scale)")
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(alpha=0.3, which="major")
  axes[0][2].legend(handles=legend_handles(bs, color, sorted({r[0] for r in rows}),
                                           (("filled", "trained"), ("hollow", "not trained"))), fontsize=7, loc="best")
  return save(fig, path)
