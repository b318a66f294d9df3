"""report/quality.py: every results line gets exactly one class with a reason naming its numbers, the trained
control follows its stated rule, budgets never mix, and λ_max keeps its sign."""

import pytest

from tfrobust.errors import UsageError
from tfrobust.report import quality as q
from tfrobust.records.trial import lambda_max, parse_trial


def line(**kw):
  """A finished digits trial (10 classes); keyword arguments override top-level fields or nested ones."""
  obj = {"trial_id": "t", "regime": "fixed_lr", "status": "ok", "diverged": False,
         "hparams": {"dataset": "digits", "batch_size": 64, "momentum": 0.9, "seed": 0, "epochs": 20,
                     "scaled_lr": 0.05},
         "metrics": {"train_loss": 0.02, "test_accuracy": 0.95},
         "history": [{"train/loss": x} for x in (1.0, 0.3, 0.1, 0.05, 0.03, 0.021, 0.0205, 0.02, 0.02, 0.02)],
         "robustness_checks": {"monotone_in_eps": {"passed": True, "detail": "ok"},
                               "zero_input_gradients": {"passed": True, "detail": "ok", "fraction": 0.0}},
         "hessian": {"top_eigenvalues": [3.0, 1.0], "min_eigenvalue": -0.1, "not_converged": []}}
  for k, v in kw.items():
    if isinstance(v, dict) and isinstance(obj.get(k), dict):
      obj[k] = {**obj[k], **v}
    else:
      obj[k] = v
  return obj


def kind(**kw):
  return q.classify(parse_trial(line(**kw)))


def test_each_class_with_its_numbers():
  assert kind() == (q.USABLE, "")
  assert kind(status="failed", error="Traceback\nOOM") == (q.FAILED, "failed (status failed): OOM")
  k, why = kind(diverged=True, divergence={"step": 17}, metrics={"test_accuracy": None})
  assert k == q.DIVERGED and "step 17" in why and "η = 0.05" in why
  k, why = kind(metrics={"test_accuracy": 0.14})
  assert k == q.COLLAPSED and why == "collapsed: clean accuracy 0.140 ≤ chance 0.100 + 0.05"
  assert kind(metrics={"test_accuracy": 0.16})[0] == q.USABLE  # just above the stated margin
  k, why = kind(robustness_checks={"zero_input_gradients": {"passed": False, "detail": "d", "fraction": 0.6}})
  assert k == q.COLLAPSED and "60% of test inputs have an all-zero input gradient" in why
  k, why = kind(robustness_checks={"zero_input_gradients": {"passed": False, "detail": "few", "fraction": 0.2}})
  assert k == q.DOUBTFUL and "zero_input_gradients failed (few)" in why
  k, why = kind(robustness_checks={"monotone_in_eps": {"passed": False, "detail": "largest rise 0.03"}})
  assert k == q.DOUBTFUL and "monotone_in_eps failed (largest rise 0.03)" in why
  k, why = kind(hessian={"not_converged": ["top_eigenvalues"]})
  assert k == q.DOUBTFUL and why == "doubtful: Hessian not converged: top_eigenvalues"


def test_chance_and_test_size_come_from_the_runs_else_one_stated_fallback():
  t = parse_trial(line(data={"num_classes": 100, "test_examples": 777}))
  assert q.num_classes(t) == (100, "recorded by the runs") and q.test_examples(t) == (777, "recorded by the runs")
  t = parse_trial(line())
  assert q.num_classes(t)[0] == q.FALLBACK_CLASSES and "assumed" in q.num_classes(t)[1]
  assert q.test_examples(t)[0] == q.FALLBACK_TEST_EXAMPLES and "assumed" in q.test_examples(t)[1]
  assert not hasattr(q, "KNOWN_DATASETS")  # no table of datasets: the runs say
  # 40% at 100 classes is not collapsed; at 10 classes 14% is.
  assert q.classify(parse_trial(line(data={"num_classes": 100}, metrics={"test_accuracy": 0.4})))[0] == q.USABLE


def test_missing_clean_accuracy_is_failed_not_collapsed():
  k, why = kind(metrics={"test_accuracy": None})
  assert k == q.FAILED and "malformed" in why


def trained_of(*objs):
  trials = [parse_trial(o) for o in objs]
  kinds = {t.trial_id: q.classify(t) for t in trials}
  return q.trained(trials, kinds)


def test_trained_is_one_absolute_threshold_and_says_by_how_much():
  out = trained_of(line(trial_id="a", metrics={"train_loss": 0.027}), line(trial_id="b", metrics={"train_loss": 0.058}),
                   line(trial_id="stuck", metrics={"train_loss": 1.2}),
                   line(trial_id="stuck2", hparams={"seed": 1}, metrics={"train_loss": 1.2}))
  assert out["a"][0] is True and out["b"][0] is True  # no relative rule: 0.027 and 0.058 are both trained
  assert out["stuck"] == (False, "final training loss 1.2 > 0.1 nats (by 1.1, 12×)")  # a stuck group is not
  assert trained_of(line(trial_id="u", metrics={"train_loss": None}))["u"] == (None, "no final training loss recorded")
  assert trained_of(line(status="failed")) == {}
  kinds = {"t": q.classify(parse_trial(line(metrics={"train_loss": 0.3})))}
  assert q.trained([parse_trial(line(metrics={"train_loss": 0.3}))], kinds, 0.5)["t"][0] is True


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), None])
def test_bad_trained_loss_is_refused(bad):
  with pytest.raises(UsageError, match="must be a finite number > 0"):
    q.check_trained_loss(bad)


def test_budgets_never_mix_and_old_results_trained_for_epochs():
  old = parse_trial(line())
  steps = parse_trial(line(trial_id="s", hparams={"budget": "steps", "max_steps": 500}))
  assert q.budget_of([old])[0] == "epochs" and "**20**" in q.budget_of([old])[1]
  assert q.budget_of([steps])[0] == "steps" and "**500**" in q.budget_of([steps])[1]
  with pytest.raises(UsageError, match=r"mixes training budgets \(epochs: 1 line\(s\), steps: 1 line\(s\)\)"):
    q.budget_of([old, steps])


def test_lambda_max_is_algebraic_and_keeps_its_sign():
  assert lambda_max({"top_eigenvalues": [0.5, -2.0], "min_eigenvalue": -2.0}) == 0.5
  assert lambda_max({"top_eigenvalues": [-0.01, -0.5], "min_eigenvalue": -3.0}) == -0.01
  assert lambda_max({"top_eigenvalues": [-3.0, 1.0]}) == 1.0  # old results: order not guaranteed
  assert lambda_max({"top_eigenvalues": [-0.2]}) == -0.2  # never |λ|
  assert lambda_max({}) is None
  t = parse_trial(line(hessian={"top_eigenvalues": [-0.3, -1.0], "min_eigenvalue": -1.0}))
  assert t.top_eig == -0.3 and t.min_eig == -1.0


def test_class_rules_state_the_constants():
  text = " ".join(q.class_rules()) + q.trained_rule()
  assert "chance + 0.05" in text and "≥ 50%" in text and "at most 0.1 nats" in text and "0.3 nats" in q.trained_rule(0.3)


def test_under_the_loss_budget_trained_means_reached_the_target():
  """The threshold is the budget's target, not --trained_loss: 0.04 nats reached a 0.05 target (trained even with
  --trained_loss 0.01), 0.2 did not (not trained even with --trained_loss 1.0); the budget sentence counts them."""
  loss_hp = {"budget": "loss", "target_train_loss": 0.05, "epochs": 150}
  ts = [parse_trial(line(trial_id="a", hparams=loss_hp, metrics={"train_loss": 0.04})),
        parse_trial(line(trial_id="b", hparams=loss_hp, metrics={"train_loss": 0.2}))]
  kinds = {t.trial_id: q.classify(t) for t in ts}
  for threshold in (0.01, 1.0):
    out = q.trained(ts, kinds, threshold)
    assert out["a"][0] is True and "reached the target 0.05 nats after 10 epoch(s)" in out["a"][1]
    assert out["b"][0] is False and "did not reach the target 0.05 nats within the cap of 150 epochs" in out["b"][1]
  budget, text = q.budget_of(ts)
  assert budget == "loss" and "**0.05 nats**" in text and "**150 epochs**" in text and "1 of 2 finished" in text
  assert "target" in q.trained_rule(budget="loss") and q.trained_rule() != q.trained_rule(budget="loss")
  with pytest.raises(UsageError, match="mixes training budgets"):
    q.budget_of(ts + [parse_trial(line(trial_id="c"))])
