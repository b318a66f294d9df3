"""The figures that read (report/verdict_figures.py, figures.py): the verdict picture from verdicts.json, C2's
contrasts inside the margin band, C3's interaction, PGD in front of the other attacks, y-ranges fitted to the
data, and legends whose regime (marker) and momentum (fill) entries never look alike."""

import json
import os

import pytest

from conftest import ROOT
from tfrobust.report import figures, stats, verdict_figures


@pytest.fixture
def kept(monkeypatch):
  """figures.save keeps the figure (instead of writing and closing it) so that a test can read its axes."""
  out = []

  def keep(fig, path, layout=True):
    out.append(fig)
    return path
  monkeypatch.setattr(figures, "save", keep)
  monkeypatch.setattr(verdict_figures, "save", keep)
  return out


def _rows():
  with open(os.path.join(ROOT, "docs", "results", "digits_study", "verdicts.json"), encoding="utf-8") as f:
    return json.load(f)


def test_verdict_picture_draws_every_judged_part_against_its_margin(kept):
  rows = _rows()
  assert verdict_figures.verdict_picture(rows, "verdicts.png") == "verdicts.png"
  axes = kept[0].axes
  comps = [r for r in rows if r["control"] == "all" and r["component"] != "claim"]
  assert len(axes) == len(comps)
  for ax, row in zip(axes, comps):
    judged = [p for p in row["parts"] if p["judged"]]
    assert len(ax.get_yticklabels()) == len(judged)
    band = ax.patches[0]  # the shaded ± margin band (axvspan: a Rectangle in data x)
    assert band.get_x() == pytest.approx(-row["margin"]) and band.get_width() == pytest.approx(2 * row["margin"])
    title = ax.get_title(loc="left")
    assert row["verdict"] in title and ("agree" in title or "trained: " in title or "usable: " in title)
  assert verdict_figures.verdict_picture([r for r in rows if r["component"] == "claim"], "x.png") is None


def test_c2_figure_shows_each_momentum_against_the_band(kept):
  rows = _rows()
  assert verdict_figures.c2_contrasts(rows, "c2.png")
  for ax in kept[0].axes:
    lo, hi = ax.get_ylim()
    assert lo < -2 and hi > 2  # the ±2-point band is inside the drawn range
    assert sorted(t.get_text() for t in ax.get_legend().get_texts())[1:] == ["μ = 0", "μ = 0.9"]


def test_adversarial_vs_eps_draws_pgd_in_front_and_the_others_lighter(kept):
  est = lambda v: stats.mean_ci([v - 0.01, v, v + 0.01])  # noqa: E731
  curves = {(a, "inf"): {0.0: {16: [(0.0, est(0.9)), (0.1, est(0.5 if a == "pgd" else 0.6))]}}
            for a in ("fgsm", "pgd", "square")}
  figures.adversarial_vs_eps(curves, "adv.png", regime="fixed_lr", mark=("pgd", "inf", 0.1))
  lines = {ln.get_label(): ln for ln in kept[0].axes[0].get_lines() if not ln.get_label().startswith("_")}
  pgd = lines.pop("PGD L∞")
  assert len(lines) == 2
  for other in lines.values():
    assert pgd.get_zorder() > other.get_zorder() and pgd.get_linewidth() > other.get_linewidth()
    assert (other.get_alpha() or 1.0) < 1.0


def test_percent_axes_fit_the_data_not_0_to_100(kept):
  rows = [("fixed_lr", b, 0.01 * k + 0.01, 0.93 + 0.001 * k, 0.61 + 0.002 * k, 10.0 + k, True)
          for k, b in enumerate((16, 32, 64, 128, 256))]
  figures.versus_train_loss(rows, "loss.png", adv_label="PGD")
  clean_ax, adv_ax = kept[0].axes[:2]
  assert clean_ax.get_ylim()[0] > 80 and clean_ax.get_ylim()[1] < 100
  assert adv_ax.get_ylim()[0] > 50 and adv_ax.get_ylim()[1] < 70


def test_legend_entries_for_regime_and_momentum_never_look_alike():
  cmap = figures.plt.get_cmap("viridis")
  handles = figures.legend_handles([16, 256], {16: cmap(0.0), 256: cmap(1.0)}, ["constant_ratio", "fixed_lr"],
                                   (("filled", "μ = 0.9"), ("hollow", "μ < 0.9")))
  looks = []
  for h in handles:
    if isinstance(h, figures.Patch):
      looks.append(("patch", tuple(h.get_facecolor()), tuple(h.get_edgecolor())))
    else:
      looks.append((h.get_marker(), h.get_markerfacecolor(), h.get_markeredgecolor()))
  assert len(set(looks)) == len(looks)
  labels = [h.get_label() for h in handles]
  assert "regime: fixed_lr" in labels and "filled: μ = 0.9" in labels


def test_c3_interaction_draws_momentum_gain_per_regime(kept):
  from tfrobust.report.verdicts import Observation  # pylint: disable=import-outside-toplevel
  pts = [Observation(regime=r, batch_size=b, momentum=mu, seed=s, clean=0.9 + (0.05 if mu and r == "fixed_lr"
                                                                                 else 0.01) * (mu > 0), adv=0.5)
         for r in ("fixed_lr", "constant_ratio") for b in (16, 64) for mu in (0.0, 0.9) for s in range(3)]
  gains = verdict_figures.momentum_gain(pts)
  assert [e.mean for _, e in gains[("clean", "fixed_lr")]] == pytest.approx([5.0, 5.0])
  assert [e.mean for _, e in gains[("clean", "constant_ratio")]] == pytest.approx([1.0, 1.0])
  assert verdict_figures.c3_interaction(pts, "c3.png", adv_label="PGD")
  labels = sorted(t.get_text() for t in kept[0].axes[0].get_legend().get_texts())
  assert labels == ["constant_ratio", "fixed_lr"]
