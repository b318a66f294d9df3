"""Where a regime stops training, in words: a finding of the study, not noise to drop.

Per regime and momentum, a batch size breaks when any of its seeds collapsed or diverged, or lost more than
ADV_LOSS_POINTS of adversarial accuracy against the median of that regime and momentum. The sentences name
η (hparams.scaled_lr) and the effective step η/(1−μ), since that is what grows with B at a constant η/B.
"""

import statistics

from tfrobust.report import quality

ADV_LOSS_POINTS = 20.0  # accuracy points below the median adversarial accuracy of the regime and momentum


def _lr_text(cell, mu):
  lrs = sorted({p.lr_used for p in cell if p.lr_used is not None})
  if not lrs:
    return ""
  lr = lrs[0]
  return f" (η = {lr:.3g}, η/(1−μ) = {lr / (1.0 - mu):.3g})" if mu < 1 else f" (η = {lr:.3g})"


def _groups(points, regimes):
  for regime in regimes:
    pts = [p for p in points if p.regime == regime and p.kind != quality.FAILED]
    for mu in sorted({p.momentum for p in pts}):
      yield regime, mu, [p for p in pts if p.momentum == mu]


def findings(points, regimes):
  """One sentence per regime and momentum that breaks somewhere (empty: none does)."""
  out = []
  for regime, mu, pts in _groups(points, regimes):
    advs = [p.adv for p in pts if p.kind in quality.IN_FITS and p.adv is not None]
    median = statistics.median(advs) if advs else None
    bs = sorted({p.batch_size for p in pts})
    broken = {}
    for b in bs:
      cell = [p for p in pts if p.batch_size == b]
      col = sum(p.kind == quality.COLLAPSED for p in cell)
      div = sum(p.kind == quality.DIVERGED for p in cell)
      lost = sorted(100 * (median - p.adv) for p in cell if median is not None and p.kind in quality.IN_FITS
                    and p.adv is not None and 100 * (median - p.adv) > ADV_LOSS_POINTS)
      if col or div or lost:
        what = ([f"{col} of {len(cell)} seeds collapsed"] if col else []) + \
               ([f"{div} of {len(cell)} seeds diverged"] if div else []) + \
               ([f"{len(lost)} lost {', '.join(f'{x:.0f}' for x in lost)} points of adversarial accuracy"]
                if lost else [])
        broken[b] = f"at B = {b}{_lr_text(cell, mu)}, " + " and ".join(what)
    if not broken:
      continue
    holds = [b for b in bs if b < min(broken)]
    head = (f"{regime} holds up to B = {max(holds)} at μ = {mu:g}" if holds
            else f"{regime} breaks down already at B = {min(broken)} at μ = {mu:g}")
    ref = f" (median {100 * median:.0f}%)" if median is not None and any("lost" in v for v in broken.values()) else ""
    out.append(head + "; " + "; ".join(broken[b] for b in sorted(broken)) + ref + ".")
  return out


def rule():
  return (f"A batch size breaks down when any of its seeds collapsed or diverged, or lost more than "
          f"{ADV_LOSS_POINTS:g} points of adversarial accuracy against the median of its regime and momentum.")


def trained_ranges(points, regimes):
  """Per regime and momentum, the batch sizes where every seed is trained, as one line each."""
  if not any(p.trained is not None for p in points if p.kind in quality.IN_FITS):
    return ["No trial records a final training loss: whether a point is trained cannot be told."]
  out = []
  for regime, mu, pts in _groups(points, regimes):
    parts, ok = [], []
    for b in sorted({p.batch_size for p in pts}):
      cell = [p for p in pts if p.batch_size == b]
      good = sum(1 for p in cell if p.kind in quality.IN_FITS and p.trained)
      if good == len(cell):
        ok.append(b)
      else:
        parts.append(f"B = {b}: {len(cell) - good} of {len(cell)} not trained")
    where = f"every seed trained at B = {', '.join(map(str, ok))}" if ok else "no batch size with every seed trained"
    out.append(f"{regime}, μ = {mu:g}: {where}" + (f" ({'; '.join(parts)})" if parts else ""))
  return out
