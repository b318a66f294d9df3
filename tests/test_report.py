"""tfrobust.report end to end on synthetic sweep directories with known effects (no TensorFlow)."""

import json
import math
import os
import random
import subprocess
import sys

import pytest

from tfrobust import report, verdicts
from tfrobust.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCHES = (16, 32, 64, 128, 256)
EPS = (0.01, 0.03, 0.1)  # pixel scale [0, 1]


def trial_line(regime, b, mu, seed, *, clean, adv, eig, diverged=False):
  """One results.jsonl record shaped like a finished tfrobust trial; `adv` is PGD L∞ accuracy at ε=0.03."""
  rob = []
  for attack, drop in (("pgd", 0.0), ("fgsm", -0.05)):
    for norm in ("inf", "2"):
      for e in EPS:
        acc = adv - drop + (0.03 - e) * 3 + (0.1 if norm == "2" else 0.0)
        rob.append({"attack": attack, "norm": norm, "eps": e, "eps_255": 255 * e, "steps": 10,
                    "step_size": e / 4, "restarts": 1, "accuracy": min(1.0, max(0.0, acc)), "examples": 360})
  lr = 0.05 if regime == "fixed_lr" else 0.05 * b / 256
  return {"trial_id": f"{regime}-b{b}-m{mu}-s{seed}", "regime": regime, "status": "ok",
          "hparams": {"dataset": "digits", "model": "mlp", "batchnorm": False, "batch_size": b, "lr": 0.05,
                      "lr_scaling": "none" if regime == "fixed_lr" else "linear", "base_batch_size": 256,
                      "scaled_lr": lr, "lr_schedule": "constant", "momentum": mu, "nesterov": False,
                      "weight_decay": 0.0, "epochs": 20, "seed": seed},
          "metrics": {"train_loss": 0.1, "train_accuracy": 0.99,
                      "test_loss": None if diverged else 0.3, "test_accuracy": clean},  # NaN is written as null
          "diverged": diverged, "robustness": rob, "hessian": {"top_eigenvalues": [eig, eig / 2]},
          "timings": {"train_s": 1.0}, "versions": {"python": "3.11"}}


def make_sweep(d, *, seeds=(0, 1, 2), ratio_adv=0.0, fixed_adv=-0.05, mom_fixed=0.05, mom_ratio=0.005,
               batches=BATCHES, drop=(), extra_lines=(), sweep_json=True, report_eps=0.03, rng_seed=0):
  """A sweep dir whose effects are known: slopes per doubling of B, momentum bumps (accuracy fractions)."""
  rng = random.Random(rng_seed)
  lines = []
  for regime, adv_k, clean_k, eig_k, mom in (("fixed_lr", fixed_adv, -0.02, 0.4, mom_fixed),
                                             ("constant_ratio", ratio_adv, 0.0, 0.0, mom_ratio)):
    for mu in (0.0, 0.9):
      for b in batches:
        for s in seeds:
          if (regime, b, mu, s) in drop:
            continue
          dlog = math.log2(b / 16)
          bump = mom if mu else 0.0
          lines.append(json.dumps(trial_line(
              regime, b, mu, s, clean=0.9 + clean_k * dlog + bump + rng.gauss(0, 0.003),
              adv=0.5 + adv_k * dlog + bump + rng.gauss(0, 0.003),
              eig=5.0 * 2 ** (eig_k * dlog + rng.gauss(0, 0.02)))))
  os.makedirs(d, exist_ok=True)
  with open(os.path.join(d, "results.jsonl"), "w") as f:
    f.write("\n".join(lines + list(extra_lines)) + "\n")
  if sweep_json:
    with open(os.path.join(d, "sweep.json"), "w") as f:
      json.dump({"regimes": ["fixed_lr", "constant_ratio"], "batch_sizes": list(BATCHES), "momenta": [0.0, 0.9],
                 "seeds": list(seeds), "epochs": 20, "report_eps": report_eps}, f)
  return d


def claims_of(d):
  trials, _ = report.load_results(d)
  choice = report.choose_adv(trials, report.load_sweep(d, []))
  claims = verdicts.evaluate(report.to_points(trials, choice))
  return {c.key: c for c in claims} | {k.key: k for c in claims for k in c.components}


def test_flat_constant_ratio_and_drop_at_fixed_lr(tmp_path):
  r = claims_of(make_sweep(str(tmp_path)))
  assert r["C2.adv"].verdict == verdicts.SUPPORTED and r["C2"].verdict == verdicts.SUPPORTED
  assert r["C1.adv"].estimate.mean == pytest.approx(-0.05, abs=0.004)
  assert r["C1"].verdict == verdicts.SUPPORTED
  assert r["C3"].verdict == verdicts.SUPPORTED


def test_clear_drop_at_constant_ratio_is_not_c2(tmp_path):
  r = claims_of(make_sweep(str(tmp_path), ratio_adv=-0.03))
  assert r["C2.adv"].estimate.mean == pytest.approx(-0.03, abs=0.004)
  assert r["C2"].verdict == verdicts.NOT_SUPPORTED


def test_one_seed_is_inconclusive(tmp_path):
  r = claims_of(make_sweep(str(tmp_path), seeds=(0,)))
  assert [r[k].verdict for k in ("C1", "C2", "C3")] == [verdicts.INCONCLUSIVE] * 3


def test_report_eps_picks_the_flagged_pgd_linf_value_else_the_middle(tmp_path):
  d = make_sweep(str(tmp_path / "a"), report_eps=0.1)
  trials, _ = report.load_results(d)
  choice = report.choose_adv(trials, report.load_sweep(d, []))
  assert (choice.attack, choice.norm, choice.eps) == ("pgd", "inf", 0.1)
  choice = report.choose_adv(trials, None)
  assert choice.eps == 0.03 and "middle" in choice.why
  with open(os.path.join(d, "results.jsonl")) as f:
    first = json.loads(f.readline())
  want = [x["accuracy"] for x in first["robustness"] if (x["attack"], x["norm"], x["eps"]) == ("pgd", "inf", 0.03)]
  assert report.adv_accuracy(trials[0], choice) == want[0]


def test_report_end_to_end(tmp_path):
  d = make_sweep(str(tmp_path))
  md_path = report.write_report(d)
  out = os.path.join(d, "report")
  assert md_path == os.path.join(out, "report.md")
  pngs = sorted(f for f in os.listdir(out) if f.endswith(".png"))
  assert pngs == ["accuracy_vs_batch.png", "adversarial_vs_eps_constant_ratio.png",
                  "adversarial_vs_eps_fixed_lr.png", "top_eigenvalue_vs_batch.png"]
  for f in pngs:
    with open(os.path.join(out, f), "rb") as fh:
      data = fh.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, f
  md = open(md_path).read()
  assert "| component | effect | regime | unit | estimate | 95% CI | seeds | verdict |" in md
  assert "**C1 — supported.**" in md and "**C2 — supported.**" in md and "**C3 — supported.**" in md
  assert "**PGD L∞, ε=0.03 (7.65/255)** (sweep.json report_eps)" in md
  assert "same number of epochs, **20**" in md
  assert "No grid point is missing." in md
  assert "supported if the whole 95% CI lies inside ±1 point " in md  # the rule is written out
  for f in pngs:
    assert f"]({f})" in md
  page = open(os.path.join(out, "report.html")).read()
  assert page.count("data:image/png;base64,") == 4 and "<b>C2 — supported.</b>" in page


def test_partial_sweep_with_diverged_failed_and_malformed_lines(tmp_path, capsys):
  failed = {"trial_id": "fixed_lr-b256-m0.9-s2", "regime": "fixed_lr", "status": "failed",
            "error": "Traceback ...\nResourceExhaustedError: OOM", "hparams": {"batch_size": 256,
                                                                               "momentum": 0.9, "seed": 2}}
  diverged = trial_line("constant_ratio", 256, 0.9, 1, clean=0.1, adv=0.0, eig=1e6, diverged=True)
  drop = {("fixed_lr", 256, 0.9, 2), ("constant_ratio", 256, 0.9, 1), ("constant_ratio", 128, 0.0, 0),
          ("constant_ratio", 128, 0.0, 2)}
  d = make_sweep(str(tmp_path), drop=drop, extra_lines=[json.dumps(failed), json.dumps(diverged), "{not json",
                                                        "[1, 2]"])
  md = open(report.write_report(d)).read()
  assert "skipped 2 malformed line(s)" in capsys.readouterr().err
  assert "2 malformed line(s) of results.jsonl were skipped." in md
  assert "**2 grid point(s) have no result line:**" in md
  assert "constant_ratio, μ=0, B=128: seed(s) 0, 2" in md
  assert "ResourceExhaustedError: OOM" in md
  diverged_section = md.split("## Diverged runs")[1].split("##")[0]
  assert "constant_ratio-b256-m0.9-s1" in diverged_section
  # The diverged run's absurd numbers must not reach the fit: the flat constant_ratio result survives.
  assert claims_of(d)["C2.adv"].verdict == verdicts.SUPPORTED


def test_without_sweep_json_the_grid_is_inferred(tmp_path):
  d = make_sweep(str(tmp_path), sweep_json=False, drop={("fixed_lr", 64, 0.0, 1)})
  md = open(report.write_report(d)).read()
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
                        text=True, timeout=60)


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


def test_report_imports_no_tensorflow():
  code = "import sys, tfrobust.report; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
  subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
