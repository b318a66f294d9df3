"""The report's figures (PNG, matplotlib Agg): accuracy and curvature vs batch size, accuracy vs ε.

Every function takes summaries already reduced to mean ± 95% CI over seeds (`verdicts.Estimate`), writes one
PNG and returns its path. Accuracies come in as fractions and are drawn in percent.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.ticker import FormatStrFormatter  # noqa: E402

_DPI = 100


def _errorbar(ax, xs, ests, *, scale=1.0, label=None, color=None, log_y=False):
  """Mean with 95% CI bars (no bar where there is a single seed)."""
  ys = [scale * e.mean for e in ests]
  lower = [scale * (e.mean - e.lo) if e.has_ci else 0.0 for e in ests]
  upper = [scale * (e.hi - e.mean) if e.has_ci else 0.0 for e in ests]
  if log_y:  # a CI reaching below 0 cannot be drawn on a log axis: stop it just above 0
    lower = [min(lo, 0.999 * y) if y > 0 else 0.0 for lo, y in zip(lower, ys)]
  ax.errorbar(xs, ys, yerr=[lower, upper], marker="o", ms=4, capsize=3, label=label, color=color)


def _log2_x(ax, batch_sizes):
  ax.set_xscale("log", base=2)
  ticks = sorted(set(batch_sizes))
  ax.set_xticks(ticks)
  ax.set_xticklabels([str(b) for b in ticks])
  ax.minorticks_off()
  ax.set_xlabel("batch size B (log2 scale)")


def _save(fig, path):
  fig.tight_layout()
  fig.savefig(path, dpi=_DPI)
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
          _errorbar(ax, [b for b, _ in rows], [e for _, e in rows], scale=100.0, label=f"μ={mom:g}")
          bs += [b for b, _ in rows]
      if bs:
        _log2_x(ax, bs)
        ax.legend(fontsize=8)
      ax.set_ylabel(ylabel, fontsize=9)
      ax.set_title(regime, fontsize=10)
      ax.grid(alpha=0.3)
  return _save(fig, path)


def eigenvalue_vs_batch(eig, path):
  """One panel per regime: top Hessian eigenvalue vs B (log-log), one line per momentum.

  eig: {regime: {momentum: [(B, Estimate)]}}.
  """
  regimes = list(eig)
  fig, axes = plt.subplots(1, len(regimes), figsize=(4.6 * len(regimes), 3.6), squeeze=False)
  for ax, regime in zip(axes[0], regimes):
    bs = []
    for mom, rows in sorted(eig[regime].items()):
      rows = [(b, e) for b, e in rows if e.mean > 0]
      if rows:
        _errorbar(ax, [b for b, _ in rows], [e for _, e in rows], label=f"μ={mom:g}", log_y=True)
        bs += [b for b, _ in rows]
    if bs:
      _log2_x(ax, bs)
      ax.set_yscale("log")
      ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
      ax.yaxis.set_minor_formatter(FormatStrFormatter("%.3g"))
      ax.tick_params(axis="y", which="minor", labelsize=7)
      ax.legend(fontsize=8)
    ax.set_ylabel("top Hessian eigenvalue (training loss)", fontsize=9)
    ax.set_title(regime, fontsize=10)
    ax.grid(alpha=0.3, which="both")
  return _save(fig, path)


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
                    color=color[b])
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
  return _save(fig, path)

