"""report/sequential.py: the group-sequential rule of --seeds=auto studies. The spending and the plan, and
studies whose truth is known: a large effect stops early, a borderline one continues, a null is never supported,
and a study whose components are all decided adds no seeds."""

import json
import os
import sys

import numpy as np
import pytest

from tfrobust.errors import UsageError
from tfrobust.records import names
from tfrobust.report import claims, effects, sequential, synthetic_study, verdicts


def test_obrien_fleming_spends_almost_nothing_early_and_all_of_alpha_by_the_cap():
  plan = sequential.make_plan()
  a = sequential.nominal(plan)
  assert plan.looks == (3, 6, 12, 24)
  assert sum(a) == pytest.approx(sequential.ALPHA)
  assert a[0] < 1e-8 and a[1] < 1e-4 and 0.001 < a[2] < 0.002 and a[3] > 0.023
  assert sequential.levels(plan)[-1] == pytest.approx(1 - 2 * a[3])
  assert sequential.make_plan((3, 6, 12, 24), 10).looks == (3, 6, 10)


@pytest.mark.parametrize("looks,cap,word", [((3, 6), 2, "below the first look"), ((6, 3), 24, "ascending"),
                                            ((3, 6), 201, "at most 200"), ((2, 6), 6, "at least 3")])
def test_bad_plans_are_refused(looks, cap, word):
  with pytest.raises(UsageError, match=word):
    sequential.make_plan(looks, cap)


def _judge(truth, seed=0, seeds=24):
  points = synthetic_study.simulate(truth, np.random.default_rng(seed), seeds=seeds)
  return sequential.judge(points, sequential.make_plan(), controls=(effects.ALL,))


def _row(rows, claim, comp):
  return verdicts.find(rows, claim, comp)


def test_a_large_effect_stops_early_and_a_null_is_never_supported():
  big = _judge(4.0)
  row = _row(big, "C1", "clean")
  assert row["verdict"] == claims.SUPPORTED and row["sequential"]["seeds_used"] < 24
  assert [h["seeds"] for h in row["sequential"]["history"]] == [3, 6, 12, 24]
  null = _judge(0.0, seed=1)
  for comp in ("clean", "adv", "eig"):
    r = _row(null, "C1", comp)
    assert all(h["verdict"] != claims.SUPPORTED for h in r["sequential"]["history"]), r["sequential"]


def test_a_verdict_is_frozen_at_its_first_decision():
  rows = _judge(4.0)
  for r in rows:
    if r["component"] == "claim":
      continue
    seq = r["sequential"]
    first = next((h for h in seq["history"] if h["verdict"] in sequential.DECIDED), None)
    if first is not None:
      assert r["verdict"] == first["verdict"] and seq["seeds_used"] == first["seeds"]


def test_a_borderline_effect_continues_past_the_first_looks():
  rows = _judge(1.3, seed=2)
  r = _row(rows, "C1", "clean")
  assert r["sequential"]["seeds_used"] > 6


def test_no_seeds_are_added_once_every_component_is_decided():
  plan = sequential.make_plan()
  decided = [{"claim": "C1", "component": "clean", "control": effects.ALL, "verdict": claims.SUPPORTED}]
  assert sequential.undecided(decided, plan, 6) == []
  open_ = [{"claim": "C1", "component": "adv", "control": effects.ALL, "verdict": claims.INCONCLUSIVE,
            "advice": {"goals": {"support": {"seeds": [10, 20]}}}}]
  assert sequential.undecided(open_, plan, 6) == ["C1.adv"] and sequential.next_look(plan, 6) == 12
  never = [dict(open_[0], advice={"goals": {"support": {"seeds": None, "examples_needed": {6: 900}}}})]
  assert sequential.undecided(never, plan, 6) == []  # the test set is too small: seeds cannot decide it
  beyond = [dict(open_[0], advice={"goals": {"support": {"seeds": [40, 90]}}})]
  assert sequential.undecided(beyond, plan, 6) == []  # more seeds than the cap
  assert sequential.next_look(plan, 24) is None


def _auto_sweep(tmp_path):
  """A synthetic study of 6 seeds whose sweep.json is an auto study's with looks at 3 and 6 seeds."""
  sys.path.append(os.path.dirname(__file__))  # pytest runs with --import-mode=importlib
  from synthetic import write_sweep  # pylint: disable=import-outside-toplevel
  d = write_sweep(str(tmp_path), lambda regime, b, mu, s: (0.9, 0.6), seeds=range(6))
  path = os.path.join(d, names.SWEEP_FILE)
  with open(path) as f:
    sweep = json.load(f)
  sweep.update(seeds="auto", sequential=sequential.make_plan((3, 6), 6).as_dict())
  with open(path, "w") as f:
    json.dump(sweep, f)
  return d


def test_the_report_of_an_auto_study_states_its_looks_and_each_component_s_history(tmp_path):
  from tfrobust.report import build
  d = _auto_sweep(tmp_path)
  md = open(build.write_report(d, with_figures=False), encoding="utf-8").read()
  assert "## Looks (--seeds=auto)" in md and "Looks at 3, 6 seeds" in md
  assert "C1.clean: " in md and "(3: " in md and "→ 6: " in md
  rows = json.load(open(os.path.join(d, names.REPORT_DIR, "verdicts.json")))
  assert all(r["sequential"]["plan"]["looks"] == [3, 6] for r in rows if r["component"] != "claim")


def test_a_look_is_judged_on_its_own_seeds_whatever_the_next_look_has_written(tmp_path):
  """Seeds 3-5 of one cell are in results.jsonl (the next look begun): judged as a whole they count as 6 seeds and
  look 2 would be judged on them; the look being decided (build(..., seeds=3)) sees its own 3 seeds only."""
  from tfrobust.report import build
  d = _auto_sweep(tmp_path)
  results = os.path.join(d, names.RESULTS_FILE)
  with open(results) as f:
    lines = [json.loads(line) for line in f]
  first_cell = lines[0]["trial_id"].rsplit("-s", 1)[0]
  kept = [line for line in lines if line["hparams"]["seed"] < 3 or line["trial_id"].startswith(first_cell + "-s")]
  with open(results, "w") as f:
    f.writelines(json.dumps(line) + "\n" for line in kept)

  def looks_judged(ctx):
    return max(h["look"] for r in ctx.rows if r["component"] != "claim" for h in r["sequential"]["history"])
  assert looks_judged(build.build(d)) == 2  # the partial look counted as a whole one
  assert looks_judged(build.build(d, seeds=3)) == 1
