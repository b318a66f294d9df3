"""The --hessian_* flags (cli/flags/hessian.py) and the HessianConfig they make: off by default, a section flag
without --hessian_top_k refused, and every flag reaching its own field (against HessianConfig's field names, on a
private FlagValues: no global flags touched)."""

import pytest
from absl import flags

from tfrobust.cli.flags import hessian as hessian_flags
from tfrobust.errors import UsageError
from tfrobust.evaluators.hessian.config import HessianConfig


def _parsed(*args):
  fv = flags.FlagValues()
  hessian_flags.define_flags(fv)
  fv(["prog", *args])
  return fv


def test_config_from_flags_refuses_hessian_flags_when_the_section_is_off():
  fv = flags.FlagValues()
  hessian_flags.define_flags(fv)
  fv(["prog"])
  assert hessian_flags.config_from_flags(fv, "digits") is None  # The default: no Hessian section.
  fv.unparse_flags()
  fv(["prog", "--hessian_tol=0"])  # Would be silently ignored: refused instead.
  with pytest.raises(UsageError, match="--hessian_tol: needs --hessian_top_k >= 1"):
    hessian_flags.config_from_flags(fv, "digits")
  fv.unparse_flags()
  fv(["prog", "--hessian_top_k=2", "--hessian_max_iter=0"])
  with pytest.raises(UsageError, match="--hessian_max_iter=0: must be >= 1"):
    hessian_flags.config_from_flags(fv, "digits").validate()  # as the entry point's ExperimentConfig.validate


def test_every_flag_reaches_its_own_field():
  """Each flag set to a value no other field has (and no default has): a swapped or dropped flag shows."""
  got = hessian_flags.config_from_flags(_parsed(
      "--hessian_top_k=3", "--hessian_examples=77", "--hessian_seed=5", "--hessian_method=power",
      "--hessian_max_iter=42", "--hessian_tol=0.25", "--hessian_trace", "--hessian_input", "--hessian_repeats=4",
      "--hessian_batch_size=64"), "digits")
  assert got == HessianConfig(top_k=3, examples=77, subset_seed=5, method="power", max_iter=42, tol=0.25,
                              trace=True, density=False, input=True, per_layer=False, repeats=4, batch_size=64)
  other = hessian_flags.config_from_flags(_parsed("--hessian_top_k=1", "--hessian_density",
                                                  "--hessian_per_layer"), "digits")
  assert (other.trace, other.density, other.input, other.per_layer) == (False, True, False, True)
  defaults = hessian_flags.config_from_flags(_parsed("--hessian_top_k=1"), "digits")
  assert defaults == HessianConfig(top_k=1)  # The flags' defaults are the config's.
