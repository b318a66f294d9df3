"""DIR/report/trials.csv: one row per trial of the study, for pandas or R without parsing JSON (the standard
library's csv module writes it; `pandas.read_csv` and R's `read.csv` read it as is).

Every column, in order (COLUMNS holds the same words; docs/trials_csv.md prints them): an empty cell is a value
the trial did not record. Accuracies are fractions in [0, 1], ε on the [0, 1] pixel scale, losses in nats.
"""

import csv
import io as std_io
import math

# (name, meaning). The adversarial columns follow ADV_COLUMN, one per attack × norm × ε found in the study.
COLUMNS = (
    ("trial_id", "the trial's name in results.jsonl and its run directory DIR/trials/<trial_id>/"),
    ("regime", "fixed_lr (η at every B), constant_ratio (η·B/B₀: η/B fixed) or sqrt (η·√(B/B₀))"),
    ("status", "ok, or failed (an exception; no numbers)"),
    ("class", "usable, doubtful, collapsed, diverged or failed (the report's trial classes, docs/verdicts.md)"),
    ("reason", "why the trial is in its class, with its numbers (empty for a plain usable trial)"),
    ("trained", "1 when the final training loss is at most the trained threshold (or reached the loss budget's "
                "target), 0 when not, empty when it cannot be told"),
    ("dataset", "hparams.dataset"),
    ("model", "hparams.model"),
    ("batch_size", "B, examples per SGD step (global batch)"),
    ("momentum", "μ, heavy-ball (or Nesterov) momentum"),
    ("seed", "the seed of the initial weights and the data order"),
    ("lr", "hparams.lr: η before the regime's scaling, per SGD step"),
    ("lr_used", "η after the regime's scaling (hparams.scaled_lr), per SGD step"),
    ("base_batch_size", "B₀ of the scaling rules"),
    ("lr_schedule", "constant, step or cosine"),
    ("weight_decay", "λ of the L2 term added to the gradient"),
    ("nesterov", "1 for Nesterov momentum, 0 for heavy ball"),
    ("budget", "epochs, steps or loss: what the same training means in this study"),
    ("epochs_budget", "hparams.epochs: the epochs asked for (under the loss budget: the cap, max_epochs)"),
    ("epochs_run", "epochs the run recorded in its history"),
    ("steps", "SGD updates made"),
    ("seconds", "wall time of the trial as the study measured it (training, attacks, Hessian, writing)"),
    ("train_seconds", "of which training (timings.train_s)"),
    ("final_train_loss", "cross-entropy over the whole training set at the end (nats)"),
    ("final_train_accuracy", "accuracy over the whole training set at the end"),
    ("test_loss", "cross-entropy over the test set at the end (nats)"),
    ("clean_accuracy", "test accuracy on unperturbed images"),
    ("test_examples", "test examples behind clean_accuracy"),
    ("lambda_max", "the algebraically largest eigenvalue of the training loss's Hessian (the report's λ_max)"),
    ("hessian_eigenvalues", "every top eigenvalue measured, descending, separated by ';'"),
    ("hessian_min_eigenvalue", "the most negative eigenvalue estimate, where measured"),
    ("hessian_trace", "Hutchinson estimate of the Hessian's trace (--hessian_trace)"),
    ("hessian_examples", "training examples the Hessian was measured on"),
    ("hessian_not_converged", "the Hessian estimates that did not converge, separated by ';'"),
    ("input_top_eigenvalue", "top eigenvalue of the Hessian with respect to the input (--hessian_input)"),
    ("input_gradient_norm", "mean norm of the loss's input gradient, where the robustness evaluator recorded it"),
)
ADV_COLUMN = "adv_{attack}_{norm}_eps{eps}"
ADV_MEANING = ("accuracy under the attack (fgsm, pgd, apgd_ce, apgd_dlr, square, autoattack) in the norm (linf, "
               "l2) at ε (the [0, 1] pixel scale): the share of test examples it does not fool; one column per "
               "attack × norm × ε found in the study")


def _num(x):
  """A cell: empty for None or a non-finite number, 1/0 for a bool, the shortest exact repr of a float."""
  if x is None:
    return ""
  if isinstance(x, bool):
    return "1" if x else "0"
  if isinstance(x, float):
    return repr(x) if math.isfinite(x) else ""
  return str(x)


def _get(d, *keys):
  for k in keys:
    if not isinstance(d, dict):
      return None
    d = d.get(k)
  return d


def adv_name(attack, norm, eps):
  return ADV_COLUMN.format(attack=attack, norm="linf" if norm == "inf" else f"l{norm}", eps=f"{eps:g}")


def _adv_keys(trials):
  return sorted({(a, n, round(e, 9)) for t in trials for a, n, e, _, _ in t.robustness},
                key=lambda k: (k[0] != "pgd", k[0], k[1] != "inf", k[1], k[2]))


def rows(trials, points, lines):
  """(header, rows) of trials.csv: trials as parsed (records.trial.Trial), points the report's Observations
  (class, reason, trained), lines {trial_id: results line} for what a Trial does not keep."""
  by_point = {p.trial_id: p for p in points}
  adv = _adv_keys(trials)
  header = [c for c, _ in COLUMNS] + [adv_name(*k) for k in adv]
  out = []
  for t in trials:
    p, line, hp = by_point.get(t.trial_id), lines.get(t.trial_id) or {}, t.hparams
    hessian = line.get("hessian") if isinstance(line.get("hessian"), dict) else {}
    eigs = hessian.get("top_eigenvalues") if isinstance(hessian.get("top_eigenvalues"), list) else []
    robust = {}
    for a, n, e, acc, _ in t.robustness:
      k = (a, n, round(e, 9))
      robust[k] = min(acc, robust.get(k, acc))
    budget = hp.get("budget", "epochs")
    row = [t.trial_id, t.regime, t.status, p.kind if p else "", p.reason if p else "",
           "" if p is None or p.trained is None else ("1" if p.trained else "0"),
           hp.get("dataset"), hp.get("model"), t.batch_size, t.momentum, t.seed, hp.get("lr"), t.lr_used,
           hp.get("base_batch_size"), hp.get("lr_schedule"), hp.get("weight_decay"), hp.get("nesterov"), budget,
           hp.get("max_epochs") if budget == "loss" and hp.get("max_epochs") else t.epochs,
           len(line.get("history") or ()) or None, line.get("steps"), line.get("wall_s"),
           _get(line, "timings", "train_s"), t.train_loss, t.train_accuracy, (t.metrics or {}).get("test/loss"),
           t.clean, t.test_examples, t.top_eig, ";".join(_num(v) for v in eigs) or None, t.min_eig,
           _get(hessian, "trace", "mean"), hessian.get("examples"), ";".join(t.not_converged) or None,
           p.input_eig if p else None, p.grad_norm if p else None]
    row += [robust.get(k) for k in adv]
    out.append([_num(v) for v in row])
  return header, out


def to_text(header, body):
  """The CSV text (RFC 4180 quoting, '\\n' line ends)."""
  buf = std_io.StringIO()
  w = csv.writer(buf, lineterminator="\n")
  w.writerow(header)
  w.writerows(body)
  return buf.getvalue()


def documentation():
  """The columns in words, as Markdown (docs/trials_csv.md quotes it)."""
  lines = [f"| `{name}` | {meaning} |" for name, meaning in COLUMNS]
  lines.append(f"| `{ADV_COLUMN}` | {ADV_MEANING} |")
  return "| column | meaning |\n|---|---|\n" + "\n".join(lines) + "\n"

