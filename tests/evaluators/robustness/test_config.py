"""evaluators/robustness config.py and its flags (cli/flags/robustness.py): every bad value refused naming its flag
(ε grids out of order or repeated, budgets ≤ 0), the flags make the config, the default grids and PGD step, and
settings that enter hparams only where an attack uses them."""

import json

import pytest
from absl import flags

from tfrobust.cli.flags import robustness as robustness_flags
from tfrobust.errors import UsageError
from tfrobust.evaluators.robustness.config import ATTACKS, DEFAULT_EPS, RobustnessConfig


@pytest.mark.parametrize("field,value,flag", [
    ("eps", (0.1, -0.01), "--eps=0.1,-0.01"), ("eps", (float("nan"),), "--eps=nan"),
    ("eps_l2", (float("inf"),), "--eps_l2=inf"), ("eps", (), "--eps="),
    ("eps", (0.1, 0.05), "--eps=0.1,0.05"), ("eps", (0.05, 0.1, 0.1), "--eps=0.05,0.1,0.1"),
    ("eps_l2", (0.5, 0.5), "--eps_l2=0.5,0.5"),
    ("attacks", ("fgsm", "cw"), "--attacks=fgsm,cw"), ("attacks", ("apgd",), "--attacks=apgd"),
    ("norms", ("inf", "1"), "--norms=inf,1"),
    ("pgd_steps", 0, "--pgd_steps=0"), ("pgd_restarts", -1, "--pgd_restarts=-1"),
    ("pgd_step_size", 0.0, "--pgd_step_size=0"), ("eval_examples", 0, "--eval_examples=0"),
    ("apgd_steps", 0, "--apgd_steps=0"), ("apgd_restarts", 0, "--apgd_restarts=0"),
    ("square_queries", 0, "--square_queries=0"), ("square_queries", -5, "--square_queries=-5"),
    ("batch_size", 0, "--attack_batch_size=0"), ("backend", "cuda", "--attack_backend=cuda"),
    ("tolerance", 2.0, "--robustness_tolerance=2"), ("eps_order", "random", "--eps_order=random"),
    ("bisection_steps", -1, "--bisection_steps=-1"), ("bisection_steps", 21, "--bisection_steps=21"),
])
def test_bad_config_names_the_flag(field, value, flag):
  with pytest.raises(UsageError, match="^" + flag.replace(".", r"\.") + ":"):
    RobustnessConfig(**{field: value}).validate()


def test_grid_messages_say_why():
  with pytest.raises(UsageError, match="strictly ascending"):
    RobustnessConfig(eps=(0.1, 0.05)).validate()
  with pytest.raises(UsageError, match="query budget must be > 0"):
    RobustnessConfig(attacks=("square",), square_queries=0).validate()


def test_every_attack_with_every_norm_is_accepted():
  # APGD and Square support both norms there are: no attack × norm pair is refused.
  RobustnessConfig(attacks=ATTACKS, norms=("inf", "2"), deep_check=True).validate()


def _parse(*args):
  fv = flags.FlagValues()
  robustness_flags.define_flags(fv)
  fv(["prog", *args])
  config = robustness_flags.config_from_flags(fv, "digits")
  return config and config.validate()  # what the entry point's ExperimentConfig.validate does


def test_flags_make_the_config():
  assert _parse() is None  # off unless --attacks is given
  config = _parse("--attacks=pgd", "--norms=inf", "--eps=0.05,0.1", "--pgd_steps=7", "--attack_backend=fused")
  assert config == RobustnessConfig(attacks=("pgd",), norms=("inf",), eps=(0.05, 0.1), pgd_steps=7,
                                    backend="fused", dataset="digits")
  assert config.grid("inf", (8, 8, 1)) == [0.0, 0.05, 0.1]
  config = _parse("--attacks=autoattack,apgd_ce", "--apgd_steps=50", "--apgd_restarts=2", "--square_queries=300")
  assert (config.attacks, config.apgd_steps, config.apgd_restarts, config.square_queries) == (
      ("autoattack", "apgd_ce"), 50, 2, 300)
  with pytest.raises(UsageError, match="^--eps: needs --attacks"):
    _parse("--eps=0.1")
  with pytest.raises(UsageError, match="^--square_queries: needs --attacks"):
    _parse("--square_queries=10")
  with pytest.raises(UsageError, match="^--eps=0.1,x: 'x' is not a number"):
    _parse("--attacks=fgsm", "--eps=0.1,x")
  with pytest.raises(UsageError, match="^--pgd_restarts=0:"):
    _parse("--attacks=pgd", "--pgd_restarts=0")
  with pytest.raises(UsageError, match="^--square_queries=0:"):
    _parse("--attacks=autoattack", "--square_queries=0")
  with pytest.raises(UsageError, match="^--eps=0.1,0.05:"):
    _parse("--attacks=apgd_ce", "--eps=0.1,0.05")


def test_new_settings_enter_hparams_only_where_used():
  """A run or study with FGSM and PGD records the settings it always did (its directory stays resumable); the
  APGD and Square budgets appear with the attacks (or the deep check) that read them."""
  old_keys = set(RobustnessConfig().hparams())
  assert not old_keys & {"apgd_steps", "apgd_restarts", "square_queries"}
  assert {"apgd_steps", "apgd_restarts"} <= set(RobustnessConfig(attacks=("apgd_ce",)).hparams())
  assert "square_queries" not in RobustnessConfig(attacks=("apgd_dlr",)).hparams()
  assert "square_queries" in RobustnessConfig(attacks=("square",)).hparams()
  full = RobustnessConfig(attacks=("autoattack",)).hparams()
  assert set(full) == set(RobustnessConfig(attacks=("pgd",), deep_check=True).hparams())
  assert set(full) - old_keys == {"apgd_steps", "apgd_restarts", "square_queries"}


def test_a_recorded_config_reads_back_as_the_config():
  """hparams.json's robustness settings give back the config that wrote them (a network attacked again later),
  whatever a section adds (`examples`)."""
  for config in (RobustnessConfig(attacks=("fgsm", "pgd"), eps=(0.02, 0.1), pgd_steps=20, pgd_restarts=5),
                 RobustnessConfig(attacks=("autoattack",), norms=("inf", "2"), eps_l2=(0.5,), apgd_steps=50)):
    recorded = json.loads(json.dumps(dict(config.hparams(), examples=500)))
    assert RobustnessConfig.from_hparams(recorded) == config


def test_the_strongest_attack_asked_for():
  assert RobustnessConfig(attacks=("fgsm", "pgd")).strongest() == "pgd"
  assert RobustnessConfig(attacks=("fgsm", "square", "autoattack")).strongest() == "autoattack"
  assert RobustnessConfig(attacks=("fgsm", "apgd_dlr")).strongest() == "apgd_dlr"


def test_default_grids_and_step_size():
  config = RobustnessConfig(dataset="cifar10")
  assert config.grid("inf", (32, 32, 3))[:3] == [0.0, 0.25 / 255, 0.5 / 255]
  assert RobustnessConfig(dataset="mnist5k").grid("2", (28, 28, 1))[-1] == 3.0
  assert RobustnessConfig().grid("inf", (8, 8, 1)) == list(DEFAULT_EPS["digits"][0])
  assert RobustnessConfig().grid("inf", (32, 32, 3)) == RobustnessConfig(dataset="cifar10").grid("inf", (32, 32, 3))
  assert RobustnessConfig(eps=(0.0, 0.1)).grid("inf", (8, 8, 1)) == [0.0, 0.1]  # 0 given is not added twice
  for grid in DEFAULT_EPS.values():  # the defaults pass the rule the flags must
    RobustnessConfig(eps=grid[0], eps_l2=grid[1]).validate()
  assert config.step_size(0.1, 20) == pytest.approx(0.0125)
  assert RobustnessConfig(pgd_step_size=0.5).step_size(0.1, 20) == 0.1  # capped at ε, as cleverhans requires
