"""Synthetic sweep directories whose truth is known, shaped like a finished tfrobust study: results.jsonl lines,
sweep.json and, unless told not to, each trial's examples.npz with per-example outcomes drawn from a Gaussian
copula (example difficulty shared by every network, so networks scored on the same examples are correlated)."""

import json
import math
import os

import numpy as np
from scipy import stats as sp_stats

from tfrobust.records import names, run

BATCHES = (16, 32, 64, 128, 256)
REGIMES = ("fixed_lr", "constant_ratio")
EPS = (0.01, 0.03, 0.1)  # the report's ε is 0.03


def scaled_lr(regime, b):
  """η of a synthetic trial: 0.05 at every B (fixed_lr), 0.05·B/256 otherwise (constant_ratio, B₀ = 256)."""
  return 0.05 if regime == "fixed_lr" else 0.05 * b / 256


def _line(regime, b, mu, s, clean, adv, *, eig, train_loss, n_clean, n_adv, curve):
  lr = scaled_lr(regime, b)
  hp = {"dataset": "synthetic", "model": "mlp", "batch_size": b, "lr": 0.05, "scaled_lr": lr, "momentum": mu,
        "seed": s, "epochs": 20, "lr_schedule": "constant", "base_batch_size": 256}
  return {"trial_id": f"{regime}-b{b}-m{mu}-s{s}", "regime": regime, "status": "ok", "hparams": hp,
          "diverged": False, "data": {"num_classes": 10, "test_examples": n_clean},
          "metrics": {"train_loss": train_loss, "train_accuracy": 0.99, "test_accuracy": clean},
          "history": [{"epoch": i + 1, "train/loss": train_loss * (1 + 2.0 ** -i)} for i in range(20)],
          "robustness": [{"attack": "pgd", "norm": "inf", "eps": e, "accuracy": a, "examples": n_adv}
                         for e, a in zip(EPS, curve)],
          "robustness_checks": {"monotone_in_eps": {"passed": True, "detail": "ok"}},
          "hessian": {"top_eigenvalues": [eig, eig / 2], "min_eigenvalue": -0.01, "not_converged": []}}


def _curve(adv):
  """PGD accuracy at EPS (the middle one is `adv`), non-increasing."""
  return [min(1.0, adv + 0.1), adv, max(0.0, adv - 0.2)]


def write_sweep(d, truth, *, seeds=(0, 1, 2), momenta=(0.0, 0.9), batches=BATCHES, regimes=REGIMES, examples=True,
                n_clean=1000, n_adv=500, seed_sd=0.002, rho=0.5, rng_seed=0, edit=None, same_seeds=False,
                eig=lambda regime, b, mu: 10.0 * (b / 16) ** (0.5 if regime == "fixed_lr" else 0.0)):
  """truth(regime, B, μ, seed) -> (clean, adversarial) true accuracies, or None for a point that never ran.
  edit(line) may change a results line (None drops it). same_seeds: every seed gives the same network."""
  rng = np.random.default_rng(rng_seed)
  z = rng.standard_normal(n_clean)  # one test set; the attacked examples are its first n_adv
  lines = []
  for regime in regimes:
    for mu in momenta:
      for b in batches:
        net_rng = None
        for s in seeds:
          acc = truth(regime, b, mu, s)
          if acc is None:
            continue
          if net_rng is None or not same_seeds:
            net_rng = np.random.default_rng([rng_seed, b, int(mu * 10), regimes.index(regime), 0 if same_seeds else s])
            shift = net_rng.normal(0, seed_sd)
            e_own = net_rng.standard_normal(n_clean)
          latent = math.sqrt(rho) * z + math.sqrt(1 - rho) * e_own
          clean_p = min(max(acc[0] + shift, 1e-4), 1 - 1e-4)
          clean_ex = latent < sp_stats.norm.ppf(clean_p)
          curve_p = _curve(min(max(acc[1] + shift, 0.0), 1.0))
          rows = np.stack([latent[:n_adv] < (sp_stats.norm.ppf(p) if 0 < p < 1 else (np.inf if p >= 1 else -np.inf))
                           for p in curve_p])
          line = _line(regime, b, mu, s, float(clean_ex.mean()), float(rows[1].mean()),
                       eig=eig(regime, b, mu) * 2 ** net_rng.normal(0, 0.02), train_loss=0.02, n_clean=n_clean,
                       n_adv=n_adv, curve=[float(r.mean()) for r in rows])
          line = edit(line) if edit else line
          if line is None:
            continue
          lines.append(json.dumps(line))
          if examples:
            tdir = names.trial_dir(d, line["trial_id"])
            os.makedirs(tdir, exist_ok=True)
            run.write_examples(tdir, run.Examples(clean=clean_ex, curves={
                ("pgd", "inf"): run.ExampleCurve("pgd", "inf", np.array(EPS), rows)}))
  os.makedirs(d, exist_ok=True)
  with open(os.path.join(d, names.RESULTS_FILE), "w") as f:
    f.write("\n".join(lines) + "\n")
  with open(os.path.join(d, names.SWEEP_FILE), "w") as f:
    json.dump({"regimes": list(regimes), "batch_sizes": list(batches), "momenta": list(momenta),
               "seeds": list(seeds), "epochs": 20, "report_eps": 0.03}, f)
  return d


def flat(clean=0.9, adv=0.5):
  return lambda regime, b, mu, s: (clean, adv)


def rows_of(d, **kw):
  """verdicts.json of a freshly written report (no figures), and a lookup (claim, component, control)."""
  from tfrobust.report import build
  build.write_report(d, with_figures=False, **kw)
  with open(os.path.join(d, names.REPORT_DIR, "verdicts.json")) as f:
    rows = json.load(f)
  find = lambda claim, comp="claim", control="all": next(  # noqa: E731
      r for r in rows if (r["claim"], r["component"], r["control"]) == (claim, comp, control))
  return rows, find
