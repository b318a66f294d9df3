"""tfrobust.records.run: examples.npz round-trips, its smallest fooling ε is the first grid ε that fools, bad
shapes are refused, and hparams.json comes back through the upgrade path."""

import os

import numpy as np
import pytest

from tfrobust import io
from tfrobust.records import names
from tfrobust.records import run as run_records


def test_examples_round_trip_with_the_smallest_fooling_eps(tmp_path):
  eps = np.array([0.0, 0.1, 0.2])
  correct = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [0, 0, 0, 1]], bool)  # example 3 never fooled, 2 wrong clean
  clean = np.array([1, 1, 0, 1, 0], bool)
  run_records.write_examples(str(tmp_path), run_records.Examples(
      clean=clean, curves={("pgd", "inf"): run_records.ExampleCurve("pgd", "inf", eps, correct)}))
  assert os.listdir(tmp_path) == [names.EXAMPLES_FILE]
  got = run_records.read_examples(str(tmp_path))
  np.testing.assert_array_equal(got.clean, clean)
  curve = got.curves[("pgd", "inf")]
  np.testing.assert_array_equal(curve.correct, correct)
  np.testing.assert_array_equal(curve.min_fool_eps, [0.2, 0.1, 0.0, np.inf])
  np.testing.assert_array_equal(curve.at(0.1), correct[1])
  assert curve.at(0.15) is None


def test_the_bisected_bracket_round_trips_where_it_was_measured(tmp_path):
  eps, correct = np.array([0.0, 0.1]), np.array([[1, 1], [0, 1]], bool)
  robust, fool = np.array([0.05, 0.1]), np.array([0.075, np.inf])
  run_records.write_examples(str(tmp_path), run_records.Examples(clean=np.ones(2, bool), curves={
      ("pgd", "inf"): run_records.ExampleCurve("pgd", "inf", eps, correct, robust, fool),
      ("fgsm", "inf"): run_records.ExampleCurve("fgsm", "inf", eps, correct)}))
  got = run_records.read_examples(str(tmp_path)).curves
  np.testing.assert_array_equal(got[("pgd", "inf")].robust_eps, robust)
  np.testing.assert_array_equal(got[("pgd", "inf")].fool_eps, fool)
  assert got[("fgsm", "inf")].fool_eps is None and set(got) == {("pgd", "inf"), ("fgsm", "inf")}


def test_a_fooled_example_that_recovers_keeps_its_first_fooling_eps():
  """Exhaustive attacks need not be monotone in ε; the smallest ε that fooled the example is what counts."""
  np.testing.assert_array_equal(run_records.min_fool_eps([0.0, 0.1, 0.2], [[True], [False], [True]]), [0.1])


@pytest.mark.parametrize("eps,correct,match", [([0.0, 0.1], np.ones((3, 4), bool), "shape"),
                                               ([0.1, 0.0], np.ones((2, 4), bool), "not strictly ascending")])
def test_inconsistent_curves_are_refused_before_writing(tmp_path, eps, correct, match):
  with pytest.raises(ValueError, match=match):
    run_records.write_examples(str(tmp_path), run_records.Examples(
        clean=np.ones(4, bool), curves={("pgd", "2"): run_records.ExampleCurve("pgd", "2", np.array(eps), correct)}))
  assert os.listdir(tmp_path) == []


def test_a_run_without_examples_or_result_reads_none(tmp_path):
  assert run_records.read_examples(str(tmp_path)) is None
  assert run_records.read_result(str(tmp_path)) is None and run_records.read_hparams(str(tmp_path)) is None


def test_hparams_written_before_later_keys_existed_read_with_their_defaults(tmp_path):
  io.write_json(os.path.join(tmp_path, names.HPARAMS_FILE), {"lr": 0.05})
  assert run_records.read_hparams(str(tmp_path)) == {"lr": 0.05, "augment": "none", "max_steps": 0,
                                                     "budget": "epochs"}
