"""A study with --stack_size (study/stacks.py): the stacks it forms (by batch size, kept across reruns), each point
recorded once with the numbers of an unstacked study, a kill -9 mid-stack resuming from the stack's checkpoint to
the numbers of a run never killed, and a bad --stack_size refused before anything is written."""

import glob
import os
import signal
import time

import numpy as np
import pytest

from conftest import assert_refused, run_module, start_module, sweep_keys, sweep_lines
from tfrobust.study import stacks
from tfrobust.study.grid import Grid

# LeNet, one step per compiled call and a checkpoint every 7 steps: slow enough to be killed mid-stack (as
# tests/train/test_driver.py kills a run), deterministic so that a resumed stack ends bitwise where it would have.
GRID = ["--dataset=digits", "--model=lenet", "--epochs=1", "--regimes=fixed_lr", "--batch_sizes=32,64",
        "--momenta=0.9", "--seeds=0,1,2", "--deterministic"]
ARGS = [*GRID, "--checkpoint_every_steps=7", "--steps_per_call=1"]
POINTS = sorted(f"fixed_lr-b{b}-m0.9-s{s}" for b in (32, 64) for s in range(3))


def test_stacks_are_formed_by_batch_size_in_grid_order_and_kept():
  grid = Grid(("fixed_lr", "constant_ratio"), (16, 32), (0.9,), (0, 1))
  formed = stacks.form(grid.points(), 3, {})
  assert sorted(map(len, formed.values())) == [1, 1, 3, 3]
  for name, keys in formed.items():
    assert {key.split("-")[1] for key in keys} == {name.split("-")[0]}  # one batch size a stack
  assert [k for keys in formed.values() for k in keys if "-b16-" in k] == [p.key for p in grid.points()
                                                                             if p.batch_size == 16]
  more = Grid(("fixed_lr", "constant_ratio"), (16, 32), (0.9,), (0, 1, 2))  # the next look's seeds
  done = {"fixed_lr-b16-m0.9-s2"}
  again = stacks.form(more.points(), 3, formed, done=done)
  assert {k: again[k] for k in formed} == formed  # recorded stacks stay as they were
  new = [keys for name, keys in again.items() if name not in formed]
  assert sorted(k for keys in new for k in keys) == sorted(p.key for p in more.points() if p.seed == 2
                                                          and p.key not in done)


def test_auto_stacks_as_many_networks_as_the_memory_budget_holds():
  """--stack_size=auto: K = ⌊budget / network_bytes⌋, at least 1, at most the points of that batch size and 64;
  network_bytes counts 3 × the parameters and 2 × B × each layer's activations (the input's included)."""
  from tfrobust import data, models
  ds = data.load_digits()
  model = models.build_model("lenet", ds.input_shape, ds.num_classes)
  params = sum(int(np.prod(w.shape)) for w in model.weights)
  one = stacks.network_bytes(model, 16)
  assert one == stacks.network_bytes(model, 1) + 4 * 2 * 15 * (one - stacks.network_bytes(model, 0)) // (4 * 2 * 16)
  assert stacks.network_bytes(model, 0) == 4 * 3 * params
  mib = one / 2 ** 20
  assert stacks.auto_stack_size(model, 16, 2.5 * mib, points=12) == 2
  assert stacks.auto_stack_size(model, 16, 0.5 * mib, points=12) == 1  # less than one network: one at a time
  assert stacks.auto_stack_size(model, 16, 1e6, points=12) == 12
  assert stacks.auto_stack_size(model, 16, 1e6, points=500) == stacks.MAX_AUTO_STACK
  mlp = models.build_model("mlp", ds.input_shape, ds.num_classes)  # dense only: alone on a CPU, stacked on a GPU
  assert stacks.auto_stack_size(mlp, 16, 1e6, points=12) == 1
  assert stacks.auto_stack_size(mlp, 16, 1e6, points=12, gpu=True) == 12
  grid = Grid(("fixed_lr",), (16, 32), (0.9,), (0, 1, 2))
  formed = stacks.form(grid.points(), lambda b, n: 2, {})  # auto's stacks of one are left out: those train alone
  assert sorted(map(len, formed.values())) == [2, 2]
  wide = Grid(("fixed_lr",), (16,), (0.9,), tuple(range(13)))  # room for 12: stacks of 7 and 6, not 12 and 1
  assert sorted(map(len, stacks.form(wide.points(), lambda b, n: 12, {}).values())) == [6, 7]


def test_a_point_begun_alone_is_left_out_of_new_stacks(tmp_path):
  """A study begun with --stack_size=1 and resumed stacked: the point whose trial holds a checkpoint finishes alone
  (its training so far is kept), the others stack."""
  import types
  grid = Grid(("fixed_lr",), (32,), (0.9,), (0, 1, 2))
  begun = os.path.join(tmp_path, "trials", "fixed_lr-b32-m0.9-s0", "checkpoints")
  os.makedirs(begun)
  open(os.path.join(begun, "checkpoint"), "w").close()
  study = types.SimpleNamespace(grid=grid, sweep_dir=str(tmp_path), done={})
  assert list(stacks.Stacks(study, 2).members.values()) == [["fixed_lr-b32-m0.9-s1", "fixed_lr-b32-m0.9-s2"]]


def _metrics(sweep):
  return {line["trial_id"]: line for line in sweep_lines(sweep)}


def _wait_for_a_stack_checkpoint(sweep, proc, timeout=180):
  deadline = time.time() + timeout
  while time.time() < deadline and proc.poll() is None:
    steps = [int(p.rsplit("-", 1)[1].split(".")[0])
             for p in glob.glob(os.path.join(sweep, stacks.STACKS_DIR, "*", "checkpoints", "ckpt-*.index"))]
    if any(s >= 14 for s in steps):
      return
    time.sleep(0.05)


def test_a_stacked_study_killed_mid_stack_resumes_and_records_what_an_unstacked_one_does(tmp_path):
  alone, ref, killed = (str(tmp_path / name) for name in ("alone", "ref", "killed"))
  for sweep, args in ((alone, [*GRID, "--stack_size=1"]), (ref, [*ARGS, "--stack_size=3"])):  # unstacked: full speed
    proc = run_module("tfrobust.sweep", *args, f"--sweep_dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]

  victim = start_module("tfrobust.sweep", *ARGS, "--stack_size=3", f"--sweep_dir={killed}", quiet=True)
  _wait_for_a_stack_checkpoint(killed, victim)
  victim.send_signal(signal.SIGKILL)
  victim.wait()
  assert not os.path.exists(os.path.join(killed, "results.jsonl")) or len(sweep_keys(killed)) < 6
  proc = run_module("tfrobust.sweep", *ARGS, "--stack_size=3", f"--sweep_dir={killed}")
  assert proc.returncode == 0, proc.stderr[-3000:]

  assert sweep_keys(alone) == sweep_keys(ref) == sweep_keys(killed) == POINTS  # every point once
  lines = {name: _metrics(sweep) for name, sweep in (("alone", alone), ("ref", ref), ("killed", killed))}
  # a stack resumed from its checkpoint, not from step 0 (which stack, and from which step, depends on when the kill
  # lands: under load the first stack may finish first and the second resume from step 7)
  assert max(line["stack"]["resumed_from_step"] for line in lines["killed"].values()) > 0
  for key in POINTS:
    a, r, k = lines["alone"][key], lines["ref"][key], lines["killed"][key]
    assert "stack" not in a and r["stack"]["size"] == 3 and r["status"] == "ok"
    assert r["timings"]["train_s"] == 0.0 < r["stack"]["train_s"]  # trained in the stack, nothing left alone
    assert set(a) == set(r) - {"stack"} and a["steps"] == r["steps"] and len(a["history"]) == len(r["history"])
    # The first epoch's running loss agrees to float32 rounding (each point's data order, rate and momentum); after
    # it the rounding of grouped against plain kernels can grow (in a 3-epoch run of these points it took
    # fixed_lr-b32-m0.9-s0's loss from 0.3859 to 0.3724 in the third epoch), so the final numbers are held to the
    # issue's bound: within the spread the seeds give (at least 0.01).
    assert r["history"][0]["train/loss"] == pytest.approx(a["history"][0]["train/loss"], rel=1e-4), key
    for metric, value in a["metrics"].items():
      seeds = [lines["alone"][other]["metrics"][metric] for other in POINTS if other.split("-")[1] == key.split("-")[1]]
      assert abs(r["metrics"][metric] - value) <= max(max(seeds) - min(seeds), 0.01), (key, metric)
    assert k["metrics"] == r["metrics"], key  # resumed bitwise
    assert [h["train/loss"] for h in k["history"]] == [h["train/loss"] for h in r["history"]], key
    trial = os.path.join(killed, "trials", key)
    assert os.listdir(os.path.join(trial, "tensorboard")) and os.path.exists(os.path.join(trial, "result.json"))


def test_bad_stack_size_is_refused_before_anything_is_written(tmp_path):
  cases = [(["--stack_size=0"], "--stack_size=0: must be an integer >= 1"),
           (["--stack_size=-2"], "--stack_size=-2: must be an integer >= 1"),
           (["--stack_size=1.5"], "--stack_size=1.5: '1.5' is not an integer or auto"),
           (["--stack_size=many"], "--stack_size=many: 'many' is not an integer or auto"),
           (["--stack_memory_mb=0"], "--stack_memory_mb=0: must be > 0"),
           (["--stack_memory_mb=nan"], "--stack_memory_mb=nan: must be > 0")]
  assert_refused([("tfrobust.sweep", ["--dataset=digits", "--model=mlp", *args], "--sweep_dir", message)
                  for args, message in cases], tmp_path)


def test_a_stack_whose_every_network_diverges_is_recorded_and_the_study_finishes(tmp_path):
  """Both networks of the stack diverge in its first call: nothing is checkpointed, and each point is still handed
  off and recorded as diverged (the stack's directory did not exist for its hand-off marker)."""
  sweep = str(tmp_path / "s")
  proc = run_module("tfrobust.sweep", "--dataset=digits", "--model=mlp", "--epochs=1", "--regimes=fixed_lr",
                    "--batch_sizes=32", "--momenta=0.9", "--seeds=0,1", "--lr=1e6", "--stack_size=2",
                    f"--sweep_dir={sweep}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = sweep_lines(sweep)
  assert len(lines) == 2 and all(line["diverged"] is True and line["status"] == "ok" for line in lines)
  assert all(line["stack"]["size"] == 2 for line in lines)
