"""The robustness evaluator's own sanity checks: named pass/fail verdicts, with the numbers they rest on, that
tell when its adversarial accuracies cannot be trusted (examples out of step, a non-monotone curve, an attack
weaker than FGSM or than noise, zero input gradients, and with the deep check an attack the autoattack sequence
beats: unconverged, or gradients masked).

Accuracies and tolerances are fractions in [0, 1]; ε on the [0, 1] pixel scale.
"""

import numpy as np
from absl import logging

from tfrobust.evaluators.robustness.config import curve_name

# The deep check runs the autoattack sequence (APGD-CE, APGD-T, Square); when autoattack is itself the attack
# checked, with these factors on its APGD steps and restarts (its first starts are the main run's own, so it can
# only find more adversarial examples, never fewer).
DEEP_STEPS_FACTOR = 2
DEEP_RESTARTS_FACTOR = 2


_SLACK = 1e-9  # Accuracies are k/N in floating point: a difference of exactly one tolerance passes.


def sanity_checks(config, clean, curves, *, reference):
  """Named pass/fail verdicts with the numbers they rest on; each failure is also logged as a warning.

  clean: the AttackRunner's probe (clean correctness, zero/tiny input gradients, per example). curves: (kind, norm)
  -> evaluate.Curve; kind an attack of config.attacks, "noise", or "deep" (the deep check's autoattack).
  reference: per-example clean correctness computed apart from the runner
  (`evaluate.reference_correct`).
  """
  tol, checks = config.tolerance, {}
  main = {k: c for k, c in curves.items() if k[0] in config.attacks}
  reference = np.asarray(reference, bool)
  reference_accuracy = float(reference.mean())

  # The ε = 0 attack and the probe run through the runner (compiled steps, replicas, reordering by example index);
  # the reference does not. A disagreement beyond a near-tie or two means examples or labels got out of step.
  differing = {c.name: int(np.sum(c.correct[0] != reference)) for c in main.values()}
  differing["clean"] = int(np.sum(clean["correct"] != reference))
  worst = max(differing.values()) / len(reference)
  checks["eps0_equals_clean"] = _verdict(
      worst <= tol + _SLACK, f"clean accuracy {reference_accuracy:.4f} by a plain forward pass; examples whose ε = 0 "
      f"(or probe) result differs from it: {differing} (tolerance {tol} of the examples)",
      clean_accuracy=reference_accuracy, examples_differing=differing, tolerance=tol)

  rises = {c.name: float(np.max(np.diff(c.accuracy), initial=0.0)) for c in main.values()}
  checks["monotone_in_eps"] = _verdict(
      max(rises.values()) <= tol + _SLACK, f"largest rise of accuracy between neighbouring ε {max(rises.values()):.4f} "
      f"(tolerance {tol})", largest_rise=rises, tolerance=tol)

  strongest = {norm: main[(config.strongest(), norm)] for norm in config.norms}
  final = {c.name: float(c.accuracy[-1]) for c in strongest.values()}
  checks["low_accuracy_at_max_eps"] = _verdict(
      max(final.values()) <= config.max_eps_accuracy + _SLACK, f"accuracy at the largest ε {final} (threshold "
      f"{config.max_eps_accuracy}); extend the grid if it is not ~0", accuracy=final,
      threshold=config.max_eps_accuracy)

  if "pgd" in config.attacks and "fgsm" in config.attacks:
    excess, fgsm_only = {}, {}
    for norm in config.norms:
      p, f = main[("pgd", norm)], main[("fgsm", norm)]
      excess[norm] = float(np.max(p.accuracy - f.accuracy))
      fgsm_only[norm] = float(np.max(np.mean(p.correct & ~f.correct, axis=1)))
    checks["pgd_not_weaker_than_fgsm"] = _verdict(
        max(excess.values()) <= tol + _SLACK,
        f"largest PGD − FGSM accuracy over ε {excess}; largest fraction of examples "
        f"fooled by FGSM only {fgsm_only} (tolerance {tol})", largest_excess=excess,
        fooled_by_fgsm_only=fgsm_only, tolerance=tol)

  zero, tiny = float(clean["zero_grad"].mean()), float(clean["tiny_grad"].mean())
  checks["zero_input_gradients"] = _verdict(
      zero <= config.zero_grad_tolerance + _SLACK,
      f"fraction of examples whose cross-entropy input gradient is exactly zero "
      f"{zero:.4f} (tolerance {config.zero_grad_tolerance}; more hints at gradient masking); below 1e-6 in L2 norm "
      f"{tiny:.4f}", fraction=zero, **{"fraction_below_1e-6": tiny}, tolerance=config.zero_grad_tolerance)

  gaps = {}
  for norm, attack in strongest.items():
    gaps[attack.name] = float(np.min(curves[("noise", norm)].accuracy - attack.accuracy))
  checks["noise_weaker_than_attack"] = _verdict(
      min(gaps.values()) >= -tol - _SLACK,
      f"smallest (random-noise − attack) accuracy over ε {gaps} (must be >= -{tol})",
      smallest_gap=gaps, noise_accuracy={curve_name("noise", n): curves[("noise", n)].accuracy.tolist()
                                         for n in config.norms}, tolerance=tol)

  if config.deep_check:
    dtol = config.deep_check_tolerance
    drop = {c.name: float(np.max(c.accuracy - curves[("deep", n)].accuracy)) for n, c in strongest.items()}
    what = ("autoattack with " f"{DEEP_STEPS_FACTOR}x the APGD steps and {DEEP_RESTARTS_FACTOR}x the restarts"
            if config.strongest() == "autoattack" else "the autoattack sequence (APGD-CE, APGD-T, Square)")
    checks["deep_autoattack"] = _verdict(
        max(drop.values()) <= dtol + _SLACK,
        f"largest accuracy drop from {what} {drop} (tolerance {dtol}; more means the attack is not converged or "
        "gradients are masked)", largest_drop=drop, tolerance=dtol,
        accuracy={n: curves[("deep", n)].accuracy.tolist() for n in config.norms})

  for name, check in checks.items():
    if not check["passed"]:
      logging.warning("robustness check %s failed: %s", name, check["detail"])
  return checks


def _verdict(passed, detail, **numbers):
  return {"passed": bool(passed), "detail": detail, **numbers}
