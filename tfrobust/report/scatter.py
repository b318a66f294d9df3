"""Every fitted trial as one marker: its metrics against the SGD temperature T = η/(B(1−μ)) (C4), and its
adversarial accuracy against each curvature measure (correlation.py). Colour: B; marker shape: regime; filled:
the highest momentum of the grid, hollow: the others. Accuracies come in as fractions and are drawn in percent."""

from tfrobust.report.figures import MARKERS, decades, fit_percent, legend_handles, plt, save


def _style(rows):
  bs = sorted({r["b"] for r in rows})
  cmap = plt.get_cmap("viridis")
  color = {b: cmap(k / max(1, len(bs) - 1)) for k, b in enumerate(bs)}
  top = max((r["mu"] for r in rows), default=0.0)
  return bs, color, top


def _legend(ax, rows, bs, color, top):
  fills = (("filled", f"μ = {top:g}"), ("hollow", f"μ < {top:g}"))
  ax.legend(handles=legend_handles(bs, color, sorted({r["regime"] for r in rows}), fills), fontsize=7, loc="best")


def panels(rows, path, *, x_label, log_x, ys):
  """One panel per (key, label, scale, log_y) of `ys`; rows: dicts with regime, b, mu, x and the ys' keys."""
  rows = [r for r in rows if r["x"] is not None and (not log_x or r["x"] > 0)]
  bs, color, top = _style(rows)
  fig, axes = plt.subplots(1, len(ys), figsize=(5 * len(ys), 4.2), squeeze=False)
  for ax, (key, label, scale, log_y) in zip(axes[0], ys):
    pts = [r for r in rows if r.get(key) is not None and (not log_y or r[key] > 0)]
    for r in pts:
      c = color[r["b"]]
      ax.scatter([r["x"]], [scale * r[key]], marker=MARKERS.get(r["regime"], "D"), s=30, edgecolors=[c],
                 linewidths=1.2, facecolors=[c] if r["mu"] == top else ["none"])
    if log_x == 2:
      ax.set_xscale("log", base=2)
    elif log_x:
      decades(ax, "x", [r["x"] for r in pts])
    if log_y:
      decades(ax, "y", [r[key] for r in pts])
    else:
      fit_percent(ax, [scale * r[key] for r in pts])
    ax.set_xlabel(x_label)
    ax.set_ylabel(label, fontsize=9)
    ax.grid(alpha=0.3, which="major")
  _legend(axes[0][-1], rows, bs, color, top)
  return save(fig, path)
