"""tfrobust.records.trial: a results line as a Trial (both result formats), and the headline choice."""

import pytest

from tfrobust.records import trial as trial_lib


def line(**over):
  rows = [{"attack": a, "norm": n, "eps": e, "accuracy": acc, "examples": 100}
          for a, n, e, acc in (("pgd", "inf", 0.0, 0.9), ("pgd", "inf", 0.05, 0.6), ("pgd", "inf", 0.1, 0.3),
                               ("pgd", "inf", 0.2, 0.1), ("fgsm", "inf", 0.1, 0.5), ("pgd", "2", 0.5, 0.4))]
  obj = {"trial_id": "fixed_lr-b16-m0.9-s0", "regime": "fixed_lr", "status": "ok",
         "hparams": {"batch_size": 16, "momentum": 0.9, "seed": 0, "lr": 0.05, "scaled_lr": 0.05, "epochs": 3},
         "metrics": {"test_accuracy": 0.95, "train_loss": 0.01, "train_accuracy": 1.0},
         "data": {"dataset": "digits", "num_classes": 10, "test_examples": 360, "train_examples": 1437},
         "robustness": {"accuracy": rows, "checks": {"monotone_in_eps": {"passed": True, "detail": "ok"}},
                        "summary": {}, "config": {}},
         "hessian": {"top_eigenvalues": [3.0, 1.0], "min_eigenvalue": -0.5, "not_converged": []}}
  obj.update(over)
  return obj


def test_a_current_line_parses_with_its_dataset_facts_and_upgraded_hparams():
  t = trial_lib.parse_trial(line())
  assert (t.regime, t.batch_size, t.momentum, t.seed, t.clean) == ("fixed_lr", 16, 0.9, 0, 0.95)
  assert (t.num_classes, t.test_examples, t.train_accuracy) == (10, 360, 1.0)
  assert t.budget == "epochs" and t.hparams["augment"] == "none"  # keys added later, by the upgrade path
  assert t.checks["monotone_in_eps"]["passed"] and len(t.robustness) == 6 and t.top_eig == 3.0


def test_the_old_flat_robustness_keys_parse_the_same():
  new = line()
  old = dict(new, robustness=new["robustness"]["accuracy"], robustness_checks=new["robustness"]["checks"])
  old.pop("data")
  a, b = trial_lib.parse_trial(new), trial_lib.parse_trial(old)
  assert a.robustness == b.robustness and a.checks == b.checks
  assert b.num_classes is None and b.test_examples is None  # older results did not record them


def test_lambda_max_keeps_the_sign_and_the_order():
  assert trial_lib.lambda_max({"top_eigenvalues": [-0.1, -2.0], "min_eigenvalue": -3.0}) == -0.1
  assert trial_lib.lambda_max({"top_eigenvalues": [1.0, 4.0]}) == 4.0  # old: order not guaranteed


@pytest.mark.parametrize("bad", [{}, {"hparams": "x"}, {"hparams": {"batch_size": 1, "momentum": 0, "seed": 0}}])
def test_a_line_that_is_no_trial_is_refused(bad):
  with pytest.raises((ValueError, KeyError)):
    trial_lib.parse_trial(bad)


def test_the_headline_is_pgd_linf_at_report_eps_else_the_middle_of_the_grid():
  t = trial_lib.parse_trial(line())
  choice = trial_lib.choose_adv([t], 0.1)
  assert (choice.attack, choice.norm, choice.eps) == ("pgd", "inf", 0.1) and choice.why.startswith("sweep.json")
  assert trial_lib.adv_accuracy(t, choice) == 0.3 and trial_lib.adv_examples(t, choice) == 100
  middle = trial_lib.choose_adv([t], None)
  assert middle.eps == 0.1 and "middle" in middle.why  # ε > 0 of PGD L∞: 0.05, 0.1, 0.2
  assert trial_lib.choose_adv([t], 0.07).eps == 0.1  # not evaluated: the middle, and it says so
  assert trial_lib.headline(t, 0.05) == (0.6, 3.0)


def test_without_pgd_linf_the_next_attack_in_preference_is_chosen():
  obj = line()
  obj["robustness"]["accuracy"] = [r for r in obj["robustness"]["accuracy"] if (r["attack"], r["norm"]) != ("pgd", "inf")]
  choice = trial_lib.choose_adv([trial_lib.parse_trial(obj)], None)
  assert (choice.attack, choice.norm) == ("pgd", "2") and "strongest attack measured: pgd L2" in choice.why


def test_the_strongest_attack_measured_is_the_headline():
  obj = line()
  obj["robustness"]["accuracy"].append({"attack": "autoattack", "norm": "inf", "eps": 0.1, "accuracy": 0.2,
                                        "examples": 100})
  t = trial_lib.parse_trial(obj)
  choice = trial_lib.choose_adv([t], 0.1)
  assert (choice.attack, choice.eps) == ("autoattack", 0.1) and trial_lib.adv_accuracy(t, choice) == 0.2
