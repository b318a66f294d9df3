"""tfrobust.records.upgrade: the one path from older files to the current keys."""

from tfrobust.records import upgrade


def test_later_hparams_are_filled_in_and_given_values_kept():
  assert upgrade.hparams({"lr": 0.1, "augment": "crop"}) == {"lr": 0.1, "augment": "crop", "max_steps": 0,
                                                             "budget": "epochs"}


def test_an_old_sweep_json_gets_the_budget_and_its_base_the_augment():
  old = {"regimes": ["fixed_lr"], "base": {"lr": 0.05}}
  assert upgrade.sweep(old) == {"regimes": ["fixed_lr"], "budget": "epochs", "base": {"augment": "none", "lr": 0.05}}
  assert old == {"regimes": ["fixed_lr"], "base": {"lr": 0.05}}  # not changed in place


def test_robustness_rows_and_checks_from_either_format():
  rows, checks = [{"attack": "pgd"}], {"monotone_in_eps": {"passed": True}}
  assert upgrade.robustness({"robustness": {"accuracy": rows, "checks": checks}}) == (rows, checks)
  assert upgrade.robustness({"robustness": rows, "robustness_checks": checks}) == (rows, checks)
  assert upgrade.robustness({}) == ([], None)


def test_old_metric_keys_take_the_split_name_form_and_new_keys_win():
  assert upgrade.metrics({"test_accuracy": 0.9, "train_loss": 0.1}) == {"test/accuracy": 0.9, "train/loss": 0.1}
  assert upgrade.metrics({"test/accuracy": 0.8, "test_accuracy": 0.9}) == {"test/accuracy": 0.8}
