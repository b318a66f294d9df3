"""report/calibration.py, report/pseudo_study.py and `python -m tfrobust.calibrate`: small calibrations through the
real verdict code meet loose bounds on synthetic studies and on pseudo-studies of real networks (the committed
digits base), the noise estimates recover a known copula, and the docs quote a generated table."""

import os

import numpy as np
import pytest

from conftest import ROOT, run_module
from tfrobust.report import calibration as cal
from tfrobust.report import paired, pseudo_study, synthetic_study

BASE = os.path.join(ROOT, "docs", "results", "calibration_base", "digits.npz")
DIRECTIONAL = ("C1.clean", "C1.adv", "C1.eig", "C3.adv", "C3.clean")


@pytest.fixture(scope="module")
def real():
  points, lr, base_b, name = pseudo_study.load_base(BASE)
  return pseudo_study.RealNoise(points, lr=lr, base_batch_size=base_b, source=name)


def test_small_synthetic_calibration_meets_loose_bounds():
  table, _ = cal.run(synthetic_study.Synthetic(), 40, seed_counts=(3,))
  for comp, by in table.items():
    false_truths = (1.0, 2.0) if comp.startswith(("C2", "C4")) else (0.0, 0.5, 1.0)  # equivalence claims
    for t in false_truths:
      assert by[3][t]["supported"] <= 4, (comp, t, by[3][t])
    for t, cell in by[3].items():
      assert cell["covered"] >= 0.85 * cell["intervals"], (comp, t, cell)
  assert table["C1.clean"][3][2.0]["supported"] >= 20  # and it has power where the noise allows it
  assert table["C4.clean"][3][2.0]["against"] >= 20  # a separate B effect of 2× the margin is seen
  assert {"C4.clean", "C4.adv", "C4.eig"} <= set(table)


def test_identical_hyperparameters_under_two_labels_are_never_supported_as_an_effect(real):
  """Pseudo-studies of real digits networks trained alike (true effect exactly 0): no directional claim is called
  supported, at 3 and at 6 seeds, and the intervals cover 0."""
  table, _ = cal.run(real, 40, truths=(0.0,), seed_counts=(3, 6), components=DIRECTIONAL)
  for comp in DIRECTIONAL:
    for seeds, by in table[comp].items():
      cell = by[0.0]
      assert cell["supported"] == 0, (comp, seeds, cell)
      assert cell["covered"] >= 0.85 * cell["intervals"], (comp, seeds, cell)


def test_real_noise_pseudo_studies_decide_a_large_effect(real):
  table, _ = cal.run(real, 30, truths=(2.0,), seed_counts=(6,), components=("C1.clean", "C3.clean"))
  assert table["C1.clean"][6][2.0]["supported"] >= 20
  assert table["C3.clean"][6][2.0]["supported"] >= 10


def test_flips_lower_the_accuracy_by_exactly_the_drop_in_expectation():
  rng = np.random.default_rng(0)
  c = np.ones(360, bool)
  c[:10] = False
  drops = [1 - pseudo_study.flip(c, 0.0125, rng).mean() - 10 / 360 for _ in range(4000)]
  assert np.mean(drops) == pytest.approx(0.0125, abs=2e-4)  # 4.5 examples: 4 or 5
  assert pseudo_study.flip(c, 0.0, rng) is c
  with pytest.raises(ValueError):
    pseudo_study.flip(c, 0.99, rng)


def test_a_base_round_trips(tmp_path, real):
  points, lr, base_b, name = pseudo_study.load_base(BASE)
  path = str(tmp_path / "b.npz")
  pseudo_study.save_base(path, points, lr=lr, base_batch_size=base_b, source=name)
  again, lr2, b2, name2 = pseudo_study.load_base(path)
  assert (lr2, b2, name2) == (lr, base_b, name) and len(again) == len(points)
  assert all((a.clean_ex == p.clean_ex).all() and (a.adv_ex == p.adv_ex).all() and a.top_eig == p.top_eig
             for a, p in zip(again, points))


def test_noise_of_recovers_a_known_copula():
  rng = np.random.default_rng(1)
  z = rng.standard_normal(2000)
  p = rng.beta(0.9 * 2000, 0.1 * 2000, size=40)  # seed sd √(0.09/2001) = 0.0067
  ex = synthetic_study.copula_outcomes(p, z, 0.9, rng)
  from tfrobust.report import verdicts
  pts = [verdicts.Observation("fixed_lr", 64, 0.9, s, float(e.mean()), float(e.mean()), 1.0, clean_ex=e, adv_ex=e)
         for s, e in enumerate(ex)]
  noise = synthetic_study.noise_of(pts)
  assert noise.rho["clean"] == pytest.approx(0.9, abs=0.03)
  assert noise.seed_sd["clean"] == pytest.approx(0.0067, abs=0.003)
  assert noise.level["clean"] == pytest.approx(0.9, abs=0.01)


def _level_family(points, idx):
  return {s: [(paired.Measure(float(p.clean_ex[idx].mean()), correct=p.clean_ex[idx], metric="clean"), 1.0)]
          for s, p in enumerate(points)}


def test_on_real_outcomes_the_shared_part_scales_as_one_over_n_and_halves_agree(real):
  """Real digits networks split in half by test example: V_shared of a half is twice the whole's (1/n) within
  tolerance, and over random splits one half's 95% interval of the mean accuracy of 12 networks, widened by √2 for
  the other half's own noise, covers the other half's estimate at the stated rate."""
  points, *_ = pseudo_study.load_base(BASE)
  nets = points[:12]
  n = len(nets[0].clean_ex)
  whole = paired.intervals([_level_family(nets, np.arange(n))], key="k", scale=100.0)[0]
  rng = np.random.default_rng(2)
  ratios, hits = [], 0
  for _ in range(100):
    perm = rng.permutation(n)
    a, b = perm[: n // 2], perm[n // 2:]
    ia = paired.intervals([_level_family(nets, a)], key="k", scale=100.0)[0]
    ib = paired.intervals([_level_family(nets, b)], key="k", scale=100.0)[0]
    ratios.append((ia.sd_shared ** 2 + ib.sd_shared ** 2) / 2 / whole.sd_shared ** 2)
    hits += abs(ia.estimate - ib.estimate) <= np.sqrt(2) * (ib.hi - ib.lo) / 2
  assert np.mean(ratios) == pytest.approx(2.0, rel=0.15)
  assert hits >= 90


def test_docs_hold_a_generated_calibration_table():
  with open(os.path.join(ROOT, "docs", "verdicts.md"), encoding="utf-8") as f:
    docs = f.read()
  block = docs.split(cal.CALIBRATION_START)[1].split(cal.CALIBRATION_END)[0]
  assert "| component | seeds | studies | P(supported), truth 0 |" in block and "| C3.clean | 24 |" in block
  assert "**synthetic**" in block and "**real noise**" in block
  assert cal.replace_block(docs, block.lstrip("\n")) == docs


@pytest.mark.parametrize("args", [("--replicates=0",), ("--seeds=1,3",), ("--seeds=x",), ("--sources=real",),
                                  ("--sources=bogus",), ("--save_base=/tmp/x.npz",)])
def test_cli_refuses_bad_flags(args):
  p = run_module("tfrobust.calibrate", *args, timeout=120)
  assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith("error:"), p.stderr


def test_cli_refuses_a_missing_docs_file_and_study(tmp_path):
  p = run_module("tfrobust.calibrate", f"--docs={tmp_path / 'none.md'}", timeout=120)
  assert p.returncode == 2 and p.stderr.count("\n") == 1
  p = run_module("tfrobust.calibrate", f"--from_study={tmp_path}", timeout=120)
  assert p.returncode == 2 and p.stderr.count("\n") == 1 and "--from_study" in p.stderr
