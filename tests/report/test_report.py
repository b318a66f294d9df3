"""tfrobust.report (report/build.py and the modules it drives) end to end on synthetic sweep directories with known
effects (no TensorFlow)."""

import json
import math
import os
import random
import subprocess
import sys

import pytest

from conftest import ROOT
from tfrobust.errors import UsageError
from tfrobust.report import build as report
from tfrobust.report import claims, verdicts

BATCHES = (16, 32, 64, 128, 256)
EPS = (0.01, 0.03, 0.1)  # pixel scale [0, 1]
ROW_KEYS = {"claim", "component", "control", "estimate", "ci", "margin", "verdict", "excluded", "n_seeds", "parts",
            "advice"}


def trial_line(regime, b, mu, seed, *, clean, adv, eig, diverged=False, examples=2000, train_loss=0.02,
               checks=None, budget=None):
  """One results.jsonl record shaped like a finished tfrobust trial; `adv` is PGD L∞ accuracy at ε=0.03."""
  rob = []
  for attack, drop in (("pgd", 0.0), ("fgsm", -0.05)):
    for norm in ("inf", "2"):
      for e in EPS:
        acc = adv - drop + (0.03 - e) * 3 + (0.1 if norm == "2" else 0.0)
        rob.append({"attack": attack, "norm": norm, "eps": e, "eps_255": 255 * e, "steps": 10,
                    "step_size": e / 4, "restarts": 1, "accuracy": min(1.0, max(0.0, acc)), "examples": examples})
  lr = 0.05 if regime == "fixed_lr" else 0.05 * b / 256
  hp = {"dataset": "digits", "model": "mlp", "batchnorm": False, "batch_size": b, "lr": 0.05,
        "lr_scaling": "none" if regime == "fixed_lr" else "linear", "base_batch_size": 256, "scaled_lr": lr,
        "lr_schedule": "constant", "momentum": mu, "nesterov": False, "weight_decay": 0.0, "epochs": 20,
        "seed": seed}
  if budget:
    hp.update(budget=budget, max_steps=1000 if budget == "steps" else 0)
  hist = [{"epoch": i + 1, "train/loss": train_loss * (1 + 2.0 ** -i)} for i in range(20)]
  return {"trial_id": f"{regime}-b{b}-m{mu}-s{seed}", "regime": regime, "status": "ok", "hparams": hp,
          "metrics": {"train_loss": None if diverged else train_loss, "train_accuracy": 0.99,
                      "test_loss": None if diverged else 0.3, "test_accuracy": clean},  # NaN is written as null
          "diverged": diverged, "history": hist, "robustness": rob,
          "robustness_checks": checks or {"monotone_in_eps": {"passed": True, "detail": "ok"}},
          "hessian": {"top_eigenvalues": [eig, eig / 2], "min_eigenvalue": -0.01, "not_converged": []},
          "timings": {"train_s": 1.0}, "versions": {"python": "3.11"}}


def make_sweep(d, *, seeds=(0, 1, 2), ratio_adv=0.0, fixed_adv=-0.05, fixed_clean=-0.02, mom_fixed=0.05,
               mom_ratio=0.005, batches=BATCHES, drop=(), extra_lines=(), sweep_json=True, report_eps=0.03,
               rng_seed=0, edit=None, **line_kw):
  """A sweep dir whose effects are known: slopes per doubling of B, momentum bumps (accuracy fractions).
  edit(obj) may change each line (return None to drop it)."""
  rng = random.Random(rng_seed)
  lines = []
  for regime, adv_k, clean_k, eig_k, mom in (("fixed_lr", fixed_adv, fixed_clean, 0.4, mom_fixed),
                                             ("constant_ratio", ratio_adv, 0.0, 0.0, mom_ratio)):
    for mu in (0.0, 0.9):
      for b in batches:
        for s in seeds:
          if (regime, b, mu, s) in drop:
            continue
          dlog = math.log2(b / 16)
          bump = mom if mu else 0.0
          obj = trial_line(regime, b, mu, s, clean=0.9 + clean_k * dlog + bump + rng.gauss(0, 0.003),
                           adv=0.5 + adv_k * dlog + bump + rng.gauss(0, 0.003),
                           eig=5.0 * 2 ** (eig_k * dlog + rng.gauss(0, 0.02)), **line_kw)
          obj = edit(obj) if edit else obj
          if obj is not None:
            lines.append(json.dumps(obj))
  os.makedirs(d, exist_ok=True)
  with open(os.path.join(d, "results.jsonl"), "w") as f:
    f.write("\n".join(lines + list(extra_lines)) + "\n")
  if sweep_json:
    with open(os.path.join(d, "sweep.json"), "w") as f:
      json.dump({"regimes": ["fixed_lr", "constant_ratio"], "batch_sizes": list(BATCHES), "momenta": [0.0, 0.9],
                 "seeds": list(seeds), "epochs": 20, "report_eps": report_eps}, f)
  return d


def rows_of(d):
  """verdicts.json of a freshly written report, and a lookup."""
  report.write_report(d, with_figures=False)
  with open(os.path.join(d, "report", "verdicts.json")) as f:
    rows = json.load(f)
  return rows, lambda claim, comp="claim", control="all": verdicts.find(rows, claim, comp, control)


def test_flat_constant_ratio_and_drop_at_fixed_lr(tmp_path):
  _, r = rows_of(make_sweep(str(tmp_path)))
  # Old results (no examples.npz): independent binomials on 2000 examples, 3 seeds: C2 cannot be shown equivalent.
  assert r("C2", "adv")["verdict"] != claims.CONTRADICTED and r("C2")["verdict"] != claims.NOT_SUPPORTED
  assert r("C1", "adv")["estimate"] == pytest.approx(-5.0, abs=0.6)
  assert r("C1")["verdict"] == claims.SUPPORTED
  assert not any(r(k)["fragile"] for k in ("C1", "C2", "C3"))


def test_negligible_drop_is_negligible_and_a_real_drop_supported(tmp_path):
  _, r = rows_of(make_sweep(str(tmp_path / "a"), fixed_clean=-0.001, fixed_adv=-0.001))
  assert r("C1", "clean")["verdict"] == claims.NEGLIGIBLE and r("C1", "adv")["verdict"] == claims.NEGLIGIBLE
  assert r("C1")["verdict"] == claims.NOT_SUPPORTED
  _, r = rows_of(make_sweep(str(tmp_path / "b"), fixed_clean=-0.03, fixed_adv=-0.03))
  assert r("C1", "clean")["verdict"] == claims.SUPPORTED and r("C1", "adv")["verdict"] == claims.SUPPORTED


def test_flat_is_c2_and_not_c1(tmp_path):
  _, r = rows_of(make_sweep(str(tmp_path), fixed_clean=0.0, fixed_adv=0.0))
  assert r("C1", "clean")["verdict"] == claims.NEGLIGIBLE and r("C1")["verdict"] == claims.NOT_SUPPORTED


def test_clear_drop_at_constant_ratio_is_not_c2(tmp_path):
  _, r = rows_of(make_sweep(str(tmp_path), ratio_adv=-0.03))
  assert r("C2", "adv")["estimate"] == pytest.approx(-12.0, abs=1.6)  # a raw contrast: 4 doublings of −3 points
  assert r("C2")["verdict"] == claims.NOT_SUPPORTED


def test_verdicts_json_schema(tmp_path):
  rows, _ = rows_of(make_sweep(str(tmp_path)))
  comps = [r for r in rows if r["component"] != "claim"]
  assert len(comps) == 10 * 4 and all(ROW_KEYS <= set(r) for r in comps)
  assert {(r["claim"], r["component"]) for r in comps} == {("C1", "clean"), ("C1", "adv"), ("C1", "eig"),
                                                          ("C2", "clean"), ("C2", "adv"), ("C3", "adv"),
                                                          ("C3", "clean"), ("C4", "clean"), ("C4", "adv"),
                                                          ("C4", "eig")}
  assert {r["control"] for r in rows} == {"all", "usable", "trained", "adverse"}
  claim_rows = [r for r in rows if r["component"] == "claim"]
  assert len(claim_rows) == 16 and all(isinstance(r["fragile"], bool) for r in claim_rows)
  for r in comps:
    assert r["verdict"] in claims.VERDICTS and isinstance(r["why"], str)
    if r["ci"] is not None:
      assert r["ci"][0] <= r["estimate"] <= r["ci"][1]


def test_collapsed_run_is_excluded_named_and_changes_the_adverse_control(tmp_path):
  def collapse(obj):
    if obj["regime"] == "constant_ratio" and obj["hparams"]["batch_size"] == 256:
      obj["metrics"]["test_accuracy"] = 0.11
      for e in obj["robustness"]:
        e["accuracy"] = 0.0
    return obj
  d = make_sweep(str(tmp_path), edit=collapse)
  _, r = rows_of(d)
  gone = {e["trial_id"]: e["reason"] for e in r("C2", "adv")["excluded"]}
  assert gone["constant_ratio-b256-m0.9-s1"] == "collapsed: clean accuracy 0.110 ≤ chance 0.100 + 0.05"
  worst = r("C2", "adv", "adverse")
  assert worst["estimate"] < -5 and worst["verdict"] != claims.SUPPORTED
  md = open(os.path.join(d, "report", "report.md")).read()
  assert "constant_ratio holds up to B = 128 at μ = 0.9; at B = 256 (η = 0.05, η/(1−μ) = 0.5), 3 of 3 seeds " \
         "collapsed" in md


def test_breakdown_names_collapse_and_lost_adversarial_accuracy(tmp_path):
  def one_bad(obj):
    key = (obj["regime"], obj["hparams"]["batch_size"], obj["hparams"]["momentum"], obj["hparams"]["seed"])
    if key == ("constant_ratio", 256, 0.9, 0):
      obj["metrics"]["test_accuracy"] = 0.1
    if key == ("constant_ratio", 256, 0.9, 1):
      for e in obj["robustness"]:
        e["accuracy"] = max(0.0, e["accuracy"] - 0.42)
    return obj
  d = make_sweep(str(tmp_path), seeds=(0, 1), edit=one_bad)
  md = open(report.write_report(d, with_figures=False)).read()
  assert ("constant_ratio holds up to B = 128 at μ = 0.9; at B = 256 (η = 0.05, η/(1−μ) = 0.5), 1 of 2 seeds "
          "collapsed and 1 lost 42 points of adversarial accuracy") in md
  assert "**The study is too small to decide:**" in md and "too few seeds: 2 < 3" in md


def test_negative_lambda_max_is_listed(tmp_path):
  def negative(obj):
    if obj["trial_id"] == "fixed_lr-b64-m0.0-s1":
      obj["hessian"]["top_eigenvalues"] = [-0.05, -0.2]
    return obj
  d = make_sweep(str(tmp_path), edit=negative)
  _, r = rows_of(d)
  assert {"trial_id": "fixed_lr-b64-m0.0-s1", "reason": "λ_max = -0.05 ≤ 0 cannot enter the log2 fit"} in \
      r("C1", "eig")["excluded"]
  md = open(os.path.join(d, "report", "report.md")).read()
  section = md.split("## λ_max ≤ 0")[1].split("\n## ")[0]
  assert "fixed_lr-b64-m0.0-s1" in section and "λ_max = -0.05" in section


def test_failed_sanity_check_makes_a_trial_doubtful_and_listed(tmp_path):
  bad = {"monotone_in_eps": {"passed": False, "detail": "largest rise 0.04 (tolerance 0.01)"}}
  d = make_sweep(str(tmp_path), edit=lambda o: dict(o, robustness_checks=bad) if o["trial_id"] ==
                 "fixed_lr-b32-m0.9-s2" else o)
  _, r = rows_of(d)
  row = r("C1", "adv")
  assert [x["trial_id"] for x in row["doubtful"]] == ["fixed_lr-b32-m0.9-s2"]
  assert "fixed_lr-b32-m0.9-s2" not in {e["trial_id"] for e in row["excluded"]}  # doubtful stays in the fit
  md = open(os.path.join(d, "report", "report.md")).read()
  section = md.split("## Doubtful trials")[1].split("\n## ")[0]
  assert "fixed_lr-b32-m0.9-s2" in section and "monotone_in_eps failed (largest rise 0.04" in section


def test_untrained_points_leave_the_trained_control(tmp_path):
  def slow(obj):
    if obj["hparams"]["batch_size"] == 256 and obj["regime"] == "fixed_lr":
      obj["metrics"]["train_loss"] = 0.5
    return obj
  d = make_sweep(str(tmp_path), edit=slow)
  _, r = rows_of(d)
  left = {e["trial_id"] for e in r("C1", "adv", "trained")["excluded"]}
  assert left == {f"fixed_lr-b256-m{m}-s{s}" for m in (0.0, 0.9) for s in (0, 1, 2)}
  md = open(os.path.join(d, "report", "report.md")).read()
  assert "final training loss 0.5 > 0.1 nats (by 0.4, 5×)" in md.split("## Not trained")[1]
  assert "fixed_lr, μ = 0.9: every seed trained at B = 16, 32, 64, 128 (B = 256: 3 of 3 not trained)" in md


def test_report_end_to_end(tmp_path):
  d = make_sweep(str(tmp_path))
  md_path = report.write_report(d)
  out = os.path.join(d, "report")
  assert md_path == os.path.join(out, "report.md")
  pngs = sorted(f for f in os.listdir(out) if f.endswith(".png"))
  assert pngs == ["accuracy_vs_batch.png", "adversarial_vs_eps_constant_ratio.png",
                  "adversarial_vs_eps_fixed_lr.png", "c2_contrasts.png", "c3_interaction.png",
                  "robustness_vs_top_eig.png", "top_eigenvalue_vs_batch.png", "verdicts.png", "versus_temperature.png",
                  "versus_train_loss.png"]
  assert sorted(f for f in os.listdir(out) if not f.endswith(".png")) == ["report.html", "report.md",
                                                                          "summary.md", "trials.csv", "verdicts.json"]
  for f in pngs:
    with open(os.path.join(out, f), "rb") as fh:
      data = fh.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, f
  md = open(md_path).read()
  assert "| component | control | effect | unit | deciding estimate | 95% CI | seeds | verdict |" in md
  assert "**C1 — supported**" in md and "What would decide the undecided components" in md
  assert "have no per-example outcomes" in md  # old results: the binomial approximation, said in words
  assert "**PGD L∞, ε=0.03 (7.65/255)** (sweep.json report_eps" in md  # records names the attack after it
  assert "Budget: **epochs**. Every point was trained for the same number of epochs, **20**" in md
  assert "No grid point is missing or failed." in md
  assert "supported when the whole 95% interval lies below −1 point per doubling of B" in md  # the rule, written out
  assert "clean test accuracy ≤ chance + 0.05" in md and "at most 0.1 nats" in md
  for f in pngs:
    assert f"]({f})" in md
  page = open(os.path.join(out, "report.html")).read()
  assert page.count("data:image/png;base64,") == len(pngs) == 10 and "<b>C1 — supported</b>" in page
  summary = open(os.path.join(out, "summary.md")).read()
  assert summary.startswith("| claim | component | estimate (all) | 95% CI (all) | verdict: all | verdict: usable "
                            "| verdict: trained | verdict: adverse |")
  assert "| C1 | adv | -" in summary and "Generated" not in summary and str(tmp_path) not in summary


def test_report_is_deterministic(tmp_path):
  d = make_sweep(str(tmp_path))
  report.write_report(d, with_figures=False)
  first = [open(os.path.join(d, "report", f)).read() for f in ("verdicts.json", "summary.md")]
  report.write_report(d, with_figures=False)
  assert [open(os.path.join(d, "report", f)).read() for f in ("verdicts.json", "summary.md")] == first


def test_partial_sweep_with_diverged_failed_and_malformed_lines(tmp_path, capsys):
  failed = {"trial_id": "fixed_lr-b256-m0.9-s2", "regime": "fixed_lr", "status": "failed",
            "error": "Traceback ...\nResourceExhaustedError: OOM", "hparams": {"batch_size": 256,
                                                                               "momentum": 0.9, "seed": 2}}
  diverged = trial_line("constant_ratio", 256, 0.9, 1, clean=None, adv=0.0, eig=1e6, diverged=True)
  drop = {("fixed_lr", 256, 0.9, 2), ("constant_ratio", 256, 0.9, 1), ("constant_ratio", 128, 0.0, 0),
          ("constant_ratio", 128, 0.0, 2)}
  d = make_sweep(str(tmp_path), drop=drop, extra_lines=[json.dumps(failed), json.dumps(diverged), "{not json",
                                                        "[1, 2]"])
  md = open(report.write_report(d, with_figures=False)).read()
  assert "2 malformed line(s) of results.jsonl were skipped" in capsys.readouterr().err
  assert "2 malformed line(s) of results.jsonl were skipped." in md
  assert "**3 grid point(s) have no numbers (no result line, or failed):**" in md
  assert "constant_ratio, μ=0, B=128: seed(s) 0, 2 (no result line)" in md
  assert "fixed_lr, μ=0.9, B=256: seed(s) 2 (failed)" in md
  section = md.split("## Collapsed, diverged and failed trials")[1].split("\n## ")[0]
  assert "ResourceExhaustedError: OOM" in section and "constant_ratio-b256-m0.9-s1" in section
  assert "diverged: non-finite training loss" in section
  _, r = rows_of(d)
  # The diverged run's absurd numbers never reach the fit; it is named, and the worst case scores it at chance.
  assert "constant_ratio-b256-m0.9-s1" in {e["trial_id"] for e in r("C2", "adv")["excluded"]}
  assert "constant_ratio-b256-m0.9-s1" not in {e["trial_id"] for e in r("C2", "adv", "adverse")["excluded"]}
  assert "fixed_lr-b256-m0.9-s2" in {e["trial_id"] for e in r("C1", "adv", "adverse")["excluded"]}


def test_a_finished_trial_without_a_finite_test_accuracy_is_failed_not_skipped(tmp_path, capsys):
  nan_line = trial_line("constant_ratio", 256, 0.9, 1, clean=None, adv=0.0, eig=1.0)
  d = make_sweep(str(tmp_path), drop={("constant_ratio", 256, 0.9, 1)}, extra_lines=[json.dumps(nan_line)])
  md = open(report.write_report(d, with_figures=False)).read()
  assert "malformed" not in capsys.readouterr().err
  _, r = rows_of(d)
  reasons = {e["trial_id"]: e["reason"] for e in r("C2", "adv")["excluded"]}
  assert reasons["constant_ratio-b256-m0.9-s1"].startswith("failed") and "constant_ratio-b256-m0.9-s1" in md


def test_without_sweep_json_the_grid_is_inferred(tmp_path):
  d = make_sweep(str(tmp_path), sweep_json=False, drop={("fixed_lr", 64, 0.0, 1)})
  md = open(report.write_report(d, with_figures=False)).read()
  assert "inferred from the results" in md and "fixed_lr, μ=0, B=64: seed(s) 1" in md
  assert "middle ε of the grid" in md


def test_no_results_is_a_usage_error(tmp_path):
  with pytest.raises(UsageError, match="no results"):
    report.write_report(str(tmp_path))
  (tmp_path / "results.jsonl").write_text("\n\n")
  with pytest.raises(UsageError, match="no results"):
    report.write_report(str(tmp_path))


def run_cli(*args):
  return subprocess.run([sys.executable, "-m", "tfrobust.report", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)


def test_cli_exit_2_on_an_empty_dir_and_0_on_a_sweep(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  p = run_cli(f"--sweep_dir={empty}")
  assert p.returncode == 2 and p.stderr.startswith("error: --sweep_dir=") and p.stderr.count("\n") == 1
  assert run_cli().returncode == 2
  d = make_sweep(str(tmp_path / "sweep"), seeds=(0, 1))
  p = run_cli(f"--sweep_dir={d}")
  assert p.returncode == 0, p.stderr
  assert os.path.isfile(os.path.join(d, "report", "report.html"))


def test_cli_mixed_budgets_and_bad_margins_exit_2_writing_nothing(tmp_path):
  d = make_sweep(str(tmp_path / "mixed"), edit=lambda o: (o if o["hparams"]["batch_size"] < 128 else
                                                          dict(o, hparams={**o["hparams"], "budget": "steps",
                                                                           "max_steps": 1000})))
  p = run_cli(f"--sweep_dir={d}")
  assert p.returncode == 2 and p.stderr.count("\n") == 1 and "mixes training budgets" in p.stderr, p.stderr
  assert not os.path.exists(os.path.join(d, "report"))
  d = make_sweep(str(tmp_path / "ok"), seeds=(0, 1))
  for flag in ("--acc_margin=0", "--acc_margin=-1", "--eig_margin=nan", "--eig_margin=inf", "--momentum_margin=0",
               "--trained_loss=0", "--trained_loss=-0.5", "--trained_loss=nan", "--trained_loss=inf"):
    p = run_cli(f"--sweep_dir={d}", flag)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and flag.split("=")[0] in p.stderr, (flag, p.stderr)
  assert not os.path.exists(os.path.join(d, "report"))


def test_steps_budget_is_stated(tmp_path):
  d = make_sweep(str(tmp_path), seeds=(0, 1), budget="steps")
  md = open(report.write_report(d, with_figures=False)).read()
  assert "Budget: **steps**. Every point was trained for the same number of SGD updates, **1000**" in md


def test_report_imports_no_tensorflow():
  code = ("import sys, tfrobust.report.build, tfrobust.cli.report; "
          "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
  subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_figures_cut_accuracy_bars_to_0_100_and_label_decades_only(tmp_path):
  from matplotlib.ticker import NullFormatter

  from tfrobust.report import figures, stats
  est = stats.mean_ci([0.99, 0.999])  # 2 seeds: the raw t-interval runs past 100%
  assert est.hi > 1.0
  fig, ax = figures.plt.subplots()
  figures._errorbar(ax, [16, 32], [est, est], scale=100.0, bounds=(0.0, 100.0))
  segments = [seg for coll in ax.collections for seg in coll.get_segments()]
  assert segments and max(y for seg in segments for _, y in seg) <= 100.0 + 1e-9
  figures.decades(ax, "y", [0.04, 0.5])
  assert ax.get_ylim() == pytest.approx((0.01, 1.0))
  assert isinstance(ax.yaxis.get_minor_formatter(), NullFormatter)
  figures.save(fig, str(tmp_path / "f.png"))
  assert os.listdir(tmp_path) == ["f.png"]  # written to a temporary name, then renamed


def test_docs_quote_the_rules_the_code_applies():
  from tfrobust.report import breakdown, effects, quality
  with open(os.path.join(ROOT, "docs", "verdicts.md"), encoding="utf-8") as f:
    docs = f.read()
  from tfrobust.report import paired
  quoted = (quality.class_rules() + [quality.trained_rule(), claims.OVERALL_RULE, claims.FRAGILE_RULE,
                                     claims.too_few_seeds_text(), breakdown.rule(), verdicts.floor_rule()]
            + verdicts.rule_lines()
            + [effects.CONTROL_TEXT[c] for c in effects.CONTROLS])
  assert [q for q in quoted if q not in docs] == []
