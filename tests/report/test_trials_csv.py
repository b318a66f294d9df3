"""trials.csv (report/trials_csv.py): one row per trial with its hyperparameters, class, accuracies per attack ×
norm × ε, Hessian figures, training loss, epochs, steps and seconds, read back with the standard library's csv
module and checked against the results lines; docs/trials_csv.md documents every column."""

import csv
import json
import os
import sys

from conftest import ROOT
sys.path.insert(0, os.path.dirname(__file__))  # pytest runs with --import-mode=importlib
from synthetic import write_sweep  # noqa: E402 pylint: disable=wrong-import-position
from tfrobust.records import names  # noqa: E402
from tfrobust.report import build as report  # noqa: E402
from tfrobust.report import trials_csv  # noqa: E402


def _sweep(d):
  def edit(line):
    line["steps"], line["wall_s"], line["timings"] = 1234, 5.5, {"train_s": 3.25}
    if line["trial_id"] == "fixed_lr-b64-m0.9-s2":
      line["metrics"]["test_accuracy"] = 0.05  # collapsed
    if line["trial_id"] == "constant_ratio-b16-m0.0-s0":
      return {"trial_id": line["trial_id"], "regime": line["regime"], "status": "failed", "error": "boom",
              "hparams": line["hparams"]}
    return line
  write_sweep(d, lambda regime, b, mu, s: (0.9, 0.5), edit=edit, batches=(16, 64), examples=False)
  report.write_report(d, with_figures=False)
  with open(os.path.join(d, names.REPORT_DIR, "trials.csv"), newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  with open(os.path.join(d, names.RESULTS_FILE), encoding="utf-8") as f:
    lines = {json.loads(x)["trial_id"]: json.loads(x) for x in f if x.strip()}
  return rows, lines


def test_one_row_per_trial_with_the_numbers_of_its_results_line(tmp_path):
  rows, lines = _sweep(str(tmp_path))
  assert sorted(r["trial_id"] for r in rows) == sorted(lines)
  by = {r["trial_id"]: r for r in rows}
  r, line = by["fixed_lr-b16-m0.9-s1"], lines["fixed_lr-b16-m0.9-s1"]
  assert (r["regime"], r["class"], r["trained"], r["batch_size"], r["momentum"], r["seed"]) == \
      ("fixed_lr", "usable", "1", "16", "0.9", "1")
  assert float(r["clean_accuracy"]) == line["metrics"]["test_accuracy"]
  assert float(r["final_train_loss"]) == line["metrics"]["train_loss"]
  for e in line["robustness"]:
    assert float(r[trials_csv.adv_name(e["attack"], e["norm"], e["eps"])]) == e["accuracy"]
  assert float(r["lambda_max"]) == line["hessian"]["top_eigenvalues"][0]
  assert [float(x) for x in r["hessian_eigenvalues"].split(";")] == line["hessian"]["top_eigenvalues"]
  assert (r["steps"], r["seconds"], r["train_seconds"], r["epochs_run"]) == ("1234", "5.5", "3.25", "20")
  assert float(r["lr_used"]) == line["hparams"]["scaled_lr"] and r["epochs_budget"] == "20"
  assert by["fixed_lr-b64-m0.9-s2"]["class"] == "collapsed" and "clean accuracy" in by["fixed_lr-b64-m0.9-s2"][
      "reason"]
  failed = by["constant_ratio-b16-m0.0-s0"]
  assert (failed["status"], failed["class"], failed["clean_accuracy"], failed["adv_pgd_linf_eps0.03"]) == \
      ("failed", "failed", "", "")
  assert list(rows[0])[:len(trials_csv.COLUMNS)] == [c for c, _ in trials_csv.COLUMNS]


def test_docs_document_every_column():
  with open(os.path.join(ROOT, "docs", "trials_csv.md"), encoding="utf-8") as f:
    doc = f.read()
  block = doc.split("<!-- trials-csv:start -->\n")[1].split("<!-- trials-csv:end -->")[0]
  assert block == trials_csv.documentation()
  for name, meaning in trials_csv.COLUMNS:
    assert meaning and f"| `{name}` |" in block
