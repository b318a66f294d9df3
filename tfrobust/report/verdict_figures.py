"""Figures drawn from the verdict rows and the trials' effects: the verdict picture (verdicts.png: every judged
part of every component as estimate ± 95% interval against the shaded ± margin band, coloured by verdict), C2's
contrasts acc(B) − acc(B_ref) per momentum with the margin band, and C3's interaction (momentum's gain per regime
over B). The intervals are the report's own (paired.py, verdicts.json), not redrawn here.
"""

import collections
import math

from tfrobust.report import answer, claims, effects, quality, stats
from tfrobust.report.figures import MARKERS, Patch, plt, save

_BAND = "#9ecae1"  # the ± margin band
_CLIP = 12.0  # x-range at most ± this many margins: one 300-point interval must not hide the others


def _parts(row):
  """The judged parts of a component row as (name, estimate, ci, verdict); the row itself when it has none."""
  ps = [(p["name"], p["estimate"], p["ci"], p["verdict"]) for p in row.get("parts", []) if p.get("judged")]
  return ps or [(row.get("why", "").split(":")[0] or "—", row.get("estimate"), row.get("ci"), row["verdict"])]


def _others(rows, row):
  """The other controls where the component's verdict differs ('trained: not measured'), or 'the other controls
  agree' (not applicable, the eigenvalue under adverse, is left out)."""
  out = []
  for c in effects.CONTROLS[1:]:
    r = next((x for x in rows if (x["claim"], x["component"], x["control"]) == (row["claim"], row["component"], c)),
             None)
    if r is not None and r["verdict"] not in (row["verdict"], claims.NOT_APPLICABLE):
      out.append(f"{c}: {r['verdict']}")
  return "; ".join(out) if out else "the other controls agree"


def _short(name, width=30):
  return name if len(name) <= width else name[:width - 1] + "…"


def _limit(parts, margin):
  """Half the x-range: every estimate shown, intervals up to ± _CLIP margins (or 1.3 × the largest estimate)."""
  ends = [abs(v) for _, e, ci, _ in parts for v in ([e] if ci is None else ci) if v is not None]
  ests = [abs(e) for _, e, _, _ in parts if e is not None]
  cap = max(_CLIP * margin, 1.3 * max(ests, default=0.0))
  return max(2.0 * margin, min(max(ends, default=margin) * 1.08, cap))


def verdict_picture(rows, path):
  """verdicts.png: one panel per component (control all), one line per judged part (momentum or contrast):
  estimate ± 95% interval, coloured by the part's verdict, against the shaded ± margin band and 0. The panel
  title gives the component's verdict on all and on the other controls; an interval beyond the x-range ends
  in an arrow."""
  comps = [r for r in rows if r["control"] == effects.ALL and r["component"] != "claim"]
  if not comps:
    return None
  heights = [max(1, len(_parts(r))) * 0.32 + 0.9 for r in comps]
  fig, axes = plt.subplots(len(comps), 1, figsize=(9.5, sum(heights) + 0.8), squeeze=False,
                           gridspec_kw={"height_ratios": heights})
  for ax, row in zip(axes[:, 0], comps):
    parts, m = _parts(row), row.get("margin") or 1.0
    lim = _limit(parts, m)
    ax.axvspan(-m, m, color=_BAND, alpha=0.45, lw=0)
    ax.axvline(0, color="black", lw=0.8)
    for i, (name, est, ci, verdict) in enumerate(parts):
      colour = answer.VERDICT_COLOURS.get(verdict, "#636363")
      if ci is not None:
        lo, hi = max(ci[0], -lim), min(ci[1], lim)
        ax.plot([lo, hi], [i, i], color=colour, lw=2.6, solid_capstyle="butt")
        for end, edge, sign in ((ci[0], -lim, -1), (ci[1], lim, 1)):
          if (end - edge) * sign > 0:
            ax.annotate("", xy=(edge, i), xytext=(edge - sign * 0.06 * lim, i),
                        arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.5})
      if est is not None and abs(est) <= lim:
        ax.plot([est], [i], "o", color=colour, mec="black", mew=0.6, ms=6)
    ax.set_yticks(range(len(parts)))
    ax.set_yticklabels([_short(p[0]) for p in parts], fontsize=7.5)
    ax.set_ylim(len(parts) - 0.4, -0.6)
    ax.set_xlim(-lim, lim)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(f"{row['claim']}.{row['component']} ({answer.METRIC.get(row['component'], '')}): "
                 f"{row['verdict']} — {_others(rows, row)}", fontsize=8.5, loc="left",
                 color=answer.VERDICT_COLOURS.get(row["verdict"], "black") if row["verdict"] != claims.INCONCLUSIVE
                 else "black")
    ax.set_xlabel(f"{row['unit'].split(' (')[0]}; band: ±{m:g}", fontsize=7.5, labelpad=1)
  seen = list(dict.fromkeys(p[3] for r in comps for p in _parts(r)))
  handles = [Patch(color=answer.VERDICT_COLOURS.get(v, "#636363"), label=v) for v in seen]
  handles.append(Patch(color=_BAND, alpha=0.45, label="± margin"))
  fig.legend(handles=handles, loc="upper center", ncol=min(4, len(handles)), fontsize=8, frameon=False)
  fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / (sum(heights) + 0.8)))
  return save(fig, path, layout=False)


def c2_contrasts(rows, path):
  """C2's contrasts acc(B) − acc(B_ref) against B, one line per momentum (clean and adversarial side by side),
  with their simultaneous 95% intervals and the ± margin band; None when C2 has no judged contrast."""
  comps = [r for r in rows if r["claim"] == "C2" and r["control"] == effects.ALL and r["component"] != "claim"]
  comps = [r for r in comps if any(p.get("judged") and p.get("batch_size") for p in r.get("parts", []))]
  if not comps:
    return None
  fig, axes = plt.subplots(1, len(comps), figsize=(5.2 * len(comps), 3.8), squeeze=False)
  for ax, row in zip(axes[0], comps):
    m = row.get("margin") or claims.C2_MARGIN
    by = collections.defaultdict(list)
    for p in row["parts"]:
      if p.get("judged") and p.get("batch_size") and p.get("estimate") is not None:
        by[p["momentum"]].append(p)
    ax.axhspan(-m, m, color=_BAND, alpha=0.45, lw=0, label=f"± margin ({m:g} points)")
    ax.axhline(0, color="black", lw=0.8)
    ends = [m, -m]
    for k, (mu, ps) in enumerate(sorted(by.items())):
      ps = sorted(ps, key=lambda p: p["batch_size"])
      xs = [p["batch_size"] * (1.03 if k else 0.97) for p in ps]  # side by side, not on top of each other
      ys = [p["estimate"] for p in ps]
      lo = [p["estimate"] - p["ci"][0] if p["ci"] else 0 for p in ps]
      hi = [p["ci"][1] - p["estimate"] if p["ci"] else 0 for p in ps]
      ax.errorbar(xs, ys, yerr=[lo, hi], marker="o" if k == 0 else "s", ms=4, capsize=3, label=f"μ = {mu:g}")
      ends += [p["ci"][i] for p in ps if p["ci"] for i in (0, 1)]
    ax.set_xscale("log", base=2)
    bs = sorted({p["batch_size"] for ps in by.values() for p in ps})
    ax.set_xticks(bs)
    ax.set_xticklabels([str(b) for b in bs])
    ax.minorticks_off()
    lim = min(max(abs(e) for e in ends) * 1.1, _CLIP * m)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel("batch size B (log2 scale), against B_ref, the smallest")
    ax.set_ylabel(f"{answer.METRIC[row['component']]}: acc(B) − acc(B_ref) (points)", fontsize=9)
    ax.set_title(f"C2.{row['component']} at constant η/B: {row['verdict']}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  return save(fig, path)


def momentum_gain(points):
  """{(metric, regime): [(B, Estimate)]}: momentum's gain, acc(highest μ) − acc(lowest μ) in points, per seed,
  then mean ± 95% t-interval over seeds (usable and doubtful trials)."""
  cells = collections.defaultdict(dict)
  for p in points:
    if p.kind in quality.IN_FITS:
      cells[(p.regime, p.batch_size, p.seed)][p.momentum] = p
  out = collections.defaultdict(list)
  for metric in ("clean", "adv"):
    by = collections.defaultdict(list)
    for (regime, b, _), mus in cells.items():
      if len(mus) >= 2:
        lo, hi = mus[min(mus)], mus[max(mus)]
        a, z = getattr(hi, metric), getattr(lo, metric)
        if a is not None and z is not None:
          by[(regime, b)].append(100.0 * (a - z))
    for (regime, b), vals in sorted(by.items()):
      out[(metric, regime)].append((b, stats.mean_ci(vals)))
  return dict(out)


def c3_interaction(points, path, *, adv_label):
  """C3: momentum's gain (highest μ − lowest μ, points) against B, one line per regime (marker: regime), clean
  and adversarial side by side; C3 asks whether the fixed-η line lies above the constant-η/B line."""
  gains = momentum_gain(points)
  metrics = [m for m in ("clean", "adv") if any(k[0] == m for k in gains)]
  if not metrics:
    return None
  fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
  for ax, metric in zip(axes[0], metrics):
    ys = []
    for (m, regime), rows in sorted(gains.items()):
      if m != metric:
        continue
      xs = [b for b, _ in rows]
      mean = [e.mean for _, e in rows]
      err = [[e.mean - e.lo if e.has_ci else 0 for _, e in rows], [e.hi - e.mean if e.has_ci else 0 for _, e in rows]]
      ax.errorbar(xs, mean, yerr=err, marker=MARKERS.get(regime, "D"), ms=5, capsize=3, label=regime)
      ys += [v for _, e in rows for v in ((e.lo, e.hi) if e.has_ci else (e.mean,)) if math.isfinite(v)]
    ax.axhline(0, color="black", lw=0.8)
    bs = sorted({b for (m, _), rows in gains.items() if m == metric for b, _ in rows})
    if bs:
      ax.set_xscale("log", base=2)
      ax.set_xticks(bs)
      ax.set_xticklabels([str(b) for b in bs])
      ax.minorticks_off()
    if ys:
      span = max(ys) - min(ys) or 1.0
      ax.set_ylim(min(min(ys), 0) - 0.08 * span, max(max(ys), 0) + 0.08 * span)
    what = "clean accuracy" if metric == "clean" else "adversarial accuracy"
    ax.set_ylabel(f"momentum's gain in {what}\n(points, highest μ − lowest μ)", fontsize=9)
    ax.set_xlabel("batch size B (log2 scale)")
    ax.set_title(f"C3.{metric}: fixed_lr above constant_ratio = C3 holds"
                 + (f"\n{adv_label}" if metric == "adv" else ""), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, title="regime (marker)", title_fontsize=7)
  return save(fig, path)
