"""evaluators/robustness checks.py: every sanity check passes on sound crafted curves and fails on the crafted case
it exists for, the one-example tolerance included; the deep check compares the strongest attack asked for with the
autoattack sequence."""

import numpy as np

from tfrobust.evaluators.robustness import checks as checks_lib
from tfrobust.evaluators.robustness.config import RobustnessConfig
from tfrobust.evaluators.robustness.evaluate import Curve


def _curve(attack, norm, acc, n=100):
  """A Curve whose example k is correct at ε_i when k < acc_i·n."""
  acc = np.asarray(acc)
  correct = np.arange(n)[None, :] < np.round(acc * n)[:, None]
  eps = tuple(np.linspace(0, 0.3, len(acc)))
  return Curve(attack, norm, eps, eps, 10, 1, correct)


def _clean(n=100, acc=0.9, zero_grad=0.0):
  k = np.arange(n)
  return {"correct": k < acc * n, "zero_grad": k < zero_grad * n, "tiny_grad": k < zero_grad * n}


def _checks(pgd, fgsm, noise, zero_grad=0.0, deep=None, reference_acc=0.9, shifted=0, autoattack=None):
  """The verdicts on crafted curves; the plain-forward-pass reference is right on its first reference_acc·n
  examples, rolled by `shifted` examples (what a runner that mixed up example order would disagree with)."""
  attacks = ("fgsm", "pgd") + (("autoattack",) if autoattack is not None else ())
  config = RobustnessConfig(attacks=attacks, norms=("inf",), deep_check=deep is not None)
  curves = {("fgsm", "inf"): _curve("fgsm", "inf", fgsm), ("pgd", "inf"): _curve("pgd", "inf", pgd),
            ("noise", "inf"): _curve("noise", "inf", noise)}
  if autoattack is not None:
    curves["autoattack", "inf"] = _curve("autoattack", "inf", autoattack)
  if deep is not None:
    curves["deep", "inf"] = _curve("autoattack", "inf", deep)
  reference = np.roll(_clean(acc=reference_acc)["correct"], shifted)
  checks = checks_lib.sanity_checks(config, _clean(zero_grad=zero_grad), curves, reference=reference)
  return {name: check["passed"] for name, check in checks.items()}


def test_each_sanity_check_can_fail():
  good = dict(pgd=[0.9, 0.5, 0.0], fgsm=[0.9, 0.6, 0.1], noise=[0.9, 0.85, 0.8])
  assert all(_checks(**good).values())
  assert not _checks(**good, reference_acc=0.8)["eps0_equals_clean"]
  assert not _checks(**good, shifted=5)["eps0_equals_clean"]  # the same accuracy, other examples
  assert _checks(**good, reference_acc=0.89)["eps0_equals_clean"]  # one example (a near-tie) is the tolerance
  assert not _checks(**dict(good, pgd=[0.9, 0.3, 0.5]))["monotone_in_eps"]
  assert not _checks(**dict(good, pgd=[0.9, 0.5, 0.2]))["low_accuracy_at_max_eps"]
  assert not _checks(**dict(good, pgd=[0.9, 0.65, 0.0]))["pgd_not_weaker_than_fgsm"]
  assert not _checks(**good, zero_grad=0.3)["zero_input_gradients"]
  assert not _checks(**dict(good, noise=[0.9, 0.4, 0.0]))["noise_weaker_than_attack"]
  # One example (1 point at n = 100) is the tolerance, not a failure.
  assert _checks(**dict(good, pgd=[0.9, 0.61, 0.0]))["pgd_not_weaker_than_fgsm"]


def test_deep_check_fails_when_autoattack_finds_more_than_the_tolerance():
  good = dict(pgd=[0.9, 0.5, 0.0], fgsm=[0.9, 0.6, 0.1], noise=[0.9, 0.85, 0.8])
  assert _checks(**good, deep=[0.9, 0.49, 0.0])["deep_autoattack"]  # one point: the tolerance
  assert not _checks(**good, deep=[0.9, 0.45, 0.0])["deep_autoattack"]
  assert _checks(**good, deep=[0.9, 0.6, 0.0])["deep_autoattack"]  # a weaker autoattack is no failure
  # With autoattack among the attacks it is the one checked (and the one that must reach ~0 and beat noise).
  strong = dict(good, autoattack=[0.9, 0.4, 0.0])
  assert _checks(**strong, deep=[0.9, 0.45, 0.0])["deep_autoattack"]
  assert not _checks(**strong, deep=[0.9, 0.3, 0.0])["deep_autoattack"]
  assert not _checks(**dict(strong, autoattack=[0.9, 0.4, 0.2]))["low_accuracy_at_max_eps"]
  assert _checks(**dict(good, pgd=[0.9, 0.5, 0.2], autoattack=[0.9, 0.4, 0.0]))["low_accuracy_at_max_eps"]


def test_deep_check_reports_its_numbers():
  config = RobustnessConfig(attacks=("pgd",), norms=("inf",), deep_check=True)
  curves = {("pgd", "inf"): _curve("pgd", "inf", [0.9, 0.5, 0.0]), ("noise", "inf"): _curve("noise", "inf", [0.9] * 3),
            ("deep", "inf"): _curve("autoattack", "inf", [0.9, 0.47, 0.0])}
  check = checks_lib.sanity_checks(config, _clean(), curves, reference=_clean()["correct"])["deep_autoattack"]
  assert abs(check["largest_drop"]["pgd_linf"] - 0.03) < 1e-9
  assert check["accuracy"]["inf"] == [0.9, 0.47, 0.0] and not check["passed"]
  assert "pgd_not_weaker_than_fgsm" not in checks_lib.sanity_checks(
      config, _clean(), curves, reference=_clean()["correct"])  # needs both attacks
