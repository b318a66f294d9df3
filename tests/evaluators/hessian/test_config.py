"""HessianConfig (evaluators/hessian/config.py): every bad value is refused naming its flag, checks against the
model and the data, and the per-dataset default subset size — against the rules written in the flags' help and
docs/hessian.md (no TensorFlow)."""

import pytest

from tfrobust.errors import UsageError
from tfrobust.evaluators.hessian.config import HessianConfig


@pytest.mark.parametrize("field,value,flag", [
    ("top_k", 0, "--hessian_top_k=0"), ("top_k", -2, "--hessian_top_k=-2"),
    ("examples", 0, "--hessian_examples=0"), ("tol", 0.0, "--hessian_tol=0.0"),
    ("tol", float("nan"), "--hessian_tol=nan"), ("max_iter", 0, "--hessian_max_iter=0"),
    ("method", "arnoldi", "--hessian_method=arnoldi"), ("repeats", 0, "--hessian_repeats=0")])
def test_bad_config_names_the_flag(field, value, flag):
  with pytest.raises(UsageError, match=flag):
    HessianConfig(**{field: value}).validate()


def test_bad_config_against_model_and_data():
  with pytest.raises(UsageError, match="--hessian_top_k=227: larger than the model's 226 parameters"):
    HessianConfig(top_k=227).validate_against(226, 100)
  with pytest.raises(UsageError, match="--hessian_examples=101: larger than the training set"):
    HessianConfig(examples=101).validate_against(226, 100)
  HessianConfig(top_k=226, examples=100, max_iter=300).validate_against(226, 100)
  assert HessianConfig().num_examples("digits", 1437) == 1437
  assert HessianConfig().num_examples("cifar10", 50000) == 4096
