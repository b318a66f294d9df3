"""The keras-tuner adapter (study/tuner.py) through `python -m tfrobust.sweep`: the grid oracle survives a kill -9
and its reload (keras-tuner#1055), a chief hands the grid to two workers, and a killed worker restarted with its
KERASTUNER_TUNER_ID resumes its own trial (#254, #344), and a stacked study's workers train each stack once — each
checked against the grid: every point exactly once in results.jsonl, read line by line with json."""

import glob
import json
import os
import signal
import socket
import time

from conftest import run_module, start_module, sweep_keys, sweep_lines

FAST = ["--dataset=digits", "--model=mlp", "--epochs=2", "--momenta=0.9", "--seeds=0"]



def test_kill_9_mid_trial_then_rerun_has_every_point_once(tmp_path):
  sweep = str(tmp_path / "s")
  args = ["--dataset=digits", "--model=mlp", "--epochs=12", "--momenta=0.9", "--seeds=0", "--regimes=fixed_lr",
          "--batch_sizes=16,24,32", f"--sweep_dir={sweep}"]
  proc = start_module("tfrobust.sweep", *args, quiet=True)
  results = os.path.join(sweep, "results.jsonl")
  deadline = time.time() + 240
  while time.time() < deadline and not (os.path.exists(results) and os.path.getsize(results)):
    time.sleep(0.05)
  time.sleep(0.5)  # well into the second trial
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert len(sweep_lines(sweep)) == 1, "the sweep must be killed during its second trial"
  rerun = run_module("tfrobust.sweep", *args)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert sweep_keys(sweep) == sorted(f"fixed_lr-b{b}-m0.9-s0" for b in (16, 24, 32))


class _FakeStudy:
  """What StudyTuner.run_trial asks of a study: its grid, run_point (recorded in `ran`) and with_seeds."""

  def __init__(self, seeds):
    from tfrobust.study.grid import Grid  # pylint: disable=import-outside-toplevel
    self.grid, self.ran = Grid(("fixed_lr",), (32,), (0.9,), tuple(seeds)), []

  def with_seeds(self, seeds):
    return _FakeStudy(seeds)

  def run_point(self, point, tuner_trial_id=None):
    self.ran.append(point.key)
    return {"metrics": {"test/accuracy": 0.5}}


def _bare_tuner(study, served_seeds):
  """A StudyTuner over `study` whose oracle serves `served_seeds` (no server, no directory: run_trial and
  pre_create_trial alone), and a trial of the point with seed `served_seeds[-1]`."""
  import keras_tuner  # pylint: disable=import-outside-toplevel
  from tfrobust.study import tuner as tuner_lib  # pylint: disable=import-outside-toplevel
  tuner = tuner_lib.StudyTuner.__new__(tuner_lib.StudyTuner)
  tuner.study = study
  tuner.oracle = tuner_lib.make_oracle(_FakeStudy(served_seeds).grid)
  trial = keras_tuner.engine.trial.Trial(tuner.oracle.get_space(), trial_id="0")
  trial.hyperparameters.values = {"regime": "fixed_lr", "batch_size": 32, "momentum": 0.9, "seed": served_seeds[-1]}
  return tuner, trial


def test_a_point_of_the_next_look_is_run_by_a_study_of_the_seeds_served_now():
  """A worker that checked the chief's look and asked for its first point as that look's server closed reaches the
  next look's oracle: the point is run over the seeds served now (a stack of the next look's points is formed over
  them), not by the study of the look the worker started."""
  from tfrobust.study import tuner as tuner_lib  # pylint: disable=import-outside-toplevel
  look_1 = _FakeStudy(range(3))
  tuner, trial = _bare_tuner(look_1, list(range(4)))  # look 2 served
  assert tuner.run_trial(trial) == {tuner_lib.OBJECTIVE: 0.5}
  assert look_1.ran == [] and tuner.study.ran == ["fixed_lr-b32-m0.9-s3"]
  assert tuple(tuner.study.grid.seeds) == (0, 1, 2, 3)


def test_a_worker_waits_before_asking_again_only_after_an_idle_answer(monkeypatch):
  """A worker that has just run a trial asks for the next at once (half a second before every trial adds up over a
  study of small networks); one whose last request got nothing to do waits before asking again (no busy polling of
  the chief)."""
  from tfrobust.study import tuner as tuner_lib  # pylint: disable=import-outside-toplevel
  sleeps = []
  monkeypatch.setattr(tuner_lib, "time", type("Clock", (), {"sleep": staticmethod(sleeps.append)}))  # this module's
  monkeypatch.setattr(tuner_lib, "is_distributed", lambda: True)
  tuner, trial = _bare_tuner(_FakeStudy([0]), [0])
  tuner.pre_create_trial()  # the first request
  tuner.run_trial(trial)  # answered with a trial
  tuner.pre_create_trial()
  assert sleeps == []
  tuner.pre_create_trial()  # the last request was answered IDLE: no run_trial in between
  assert sleeps == [tuner_lib.WORKER_POLL_PAUSE_S]


def _keras_tuner_env(tuner_id, port):
  return {"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _chief_and_two_workers(args, timeout=300, late=None):
  """`python -m tfrobust.sweep args` as a chief and two workers on a free port; each one's (stdout, stderr), once
  all three have exited with status 0. late: tuner1 starts once `late()` holds (else with tuner0)."""
  port = _free_port()
  procs = []
  try:
    for tuner_id in ("chief", "tuner0", "tuner1"):
      deadline = time.time() + timeout
      while (tuner_id == "tuner1" and late is not None and not late() and time.time() < deadline
             and all(p.poll() is None for p in procs)):
        time.sleep(0.2)
      procs.append(start_module("tfrobust.sweep", *args, env=_keras_tuner_env(tuner_id, port)))
      if tuner_id == "chief":
        time.sleep(3)  # let the chief open its port first
    outputs = [p.communicate(timeout=timeout) for p in procs]
  finally:
    for p in procs:
      p.kill()
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
  return outputs


def test_chief_and_two_workers_run_every_point_once(tmp_path):
  sweep = str(tmp_path / "s")
  args = [*FAST, "--regimes=fixed_lr,constant_ratio", "--batch_sizes=32,64", f"--sweep_dir={sweep}"]
  _chief_and_two_workers(args)
  want = sorted(f"{r}-b{b}-m0.9-s0" for r in ("fixed_lr", "constant_ratio") for b in (32, 64))
  assert sweep_keys(sweep) == want
  ran_by = {line["trial_id"]: line["tuner_trial_id"] for line in sweep_lines(sweep)}
  assert len(set(ran_by.values())) == 4  # four distinct keras-tuner trials
  assert os.path.exists(os.path.join(sweep, "report", "report.md"))  # the chief wrote the report


def test_chief_and_two_workers_train_each_stack_once(tmp_path):
  """A stacked study (--stack_size=auto, the default) over a chief and two workers: the chief sizes and forms the
  stacks, the worker handed a stack's first point trains the stack, and the oracle holds its other points back
  until its networks are handed off (else the second worker takes the next point, of the same stack, and trains
  the stack again beside the first)."""
  sweep = str(tmp_path / "s")
  args = ["--dataset=digits", "--model=lenet", "--epochs=1", "--regimes=fixed_lr,constant_ratio",
          "--batch_sizes=32,64", "--momenta=0.9", "--seeds=0,1", "--attacks=fgsm", "--eps=0.1", "--report_eps=0.1",
          "--hessian_top_k=1", "--hessian_max_iter=5", f"--sweep_dir={sweep}"]
  outputs = _chief_and_two_workers(args)
  with open(os.path.join(sweep, "stacks.json"), encoding="utf-8") as f:
    formed = json.load(f)
  trained = [line.split(":")[0] for out, _ in outputs[1:] for line in out.splitlines() if line.startswith("stack ")]
  assert len(formed) == 2 and sorted(trained) == sorted(f"stack {name}" for name in formed)  # each stack once
  assert sweep_keys(sweep) == sorted(f"{r}-b{b}-m0.9-s{s}" for r in ("fixed_lr", "constant_ratio")
                                     for b in (32, 64) for s in (0, 1))
  assert all(line["status"] == "ok" and line["stack"]["size"] == 4 for line in sweep_lines(sweep))
  assert os.path.exists(os.path.join(sweep, "report", "report.md"))  # the chief wrote the report


# A --seeds=auto study (tests/cli/test_sweep.py's): 24 points at look 1, 8 more if it goes on to look 2.
AUTO = ["--dataset=digits", "--model=mlp", "--epochs=1", "--regimes=fixed_lr,constant_ratio", "--batch_sizes=16,64",
        "--momenta=0,0.9", "--seeds=auto", "--looks=3", "--max_seeds=4", "--attacks=fgsm", "--eps=0.1",
        "--report_eps=0.1", "--hessian_top_k=1", "--hessian_max_iter=5"]


def test_chief_and_two_workers_run_every_point_of_every_look_once(tmp_path):
  """The chief serves each look's grid in turn on one port, judges it and records the decision; the workers follow it
  to the next look (keras-tuner's own server, left listening after look 1, kept the workers on the finished look
  and the chief waiting for them forever). The second worker starts only once look 1 is decided: it skips look 1
  and joins the next (as a worker restarted late does)."""
  sweep = str(tmp_path / "s")
  args = [*AUTO, f"--sweep_dir={sweep}"]
  outputs = _chief_and_two_workers(args, late=lambda: os.path.exists(os.path.join(sweep, "looks.json")))
  assert not [line for line in outputs[2][0].splitlines() if line.startswith("[") and "seed=3" not in line]
  first = next(line for line in outputs[0][0].splitlines() if line.startswith("look 1 (3 seeds)"))
  more = "next look: 4 seeds" in first  # on this CPU kind's networks (on another, look 1 may decide it all)
  keys = sweep_keys(sweep)
  assert len(keys) == len(set(keys)) == (32 if more else 24)
  assert ("look 2 (4 seeds)" in outputs[0][0]) == more
  assert os.path.exists(os.path.join(sweep, "report", "report.md"))  # the chief wrote the report


def test_killed_worker_restarted_with_its_id_finishes_its_trial(tmp_path):
  """The documented recovery: the chief keeps a killed worker's trial 'running'; the same KERASTUNER_TUNER_ID
  started again gets that trial back and resumes it from its checkpoint."""
  sweep = str(tmp_path / "s")
  args = ["--dataset=digits", "--model=mlp", "--epochs=12", "--momenta=0.9", "--seeds=0", "--regimes=fixed_lr",
          "--batch_sizes=16,32", f"--sweep_dir={sweep}"]
  port = _free_port()

  def start(tuner_id):
    return start_module("tfrobust.sweep", *args, env=_keras_tuner_env(tuner_id, port))

  chief = start("chief")
  time.sleep(3)
  worker = start("tuner0")
  checkpoints = glob.glob(os.path.join(sweep, "trials", "*", "checkpoints", "checkpoint"))
  deadline = time.time() + 240
  while time.time() < deadline and not checkpoints:
    time.sleep(0.05)
    checkpoints = glob.glob(os.path.join(sweep, "trials", "*", "checkpoints", "checkpoint"))
  worker.send_signal(signal.SIGKILL)  # after its first epoch's checkpoint, long before its trial ends
  worker.wait()
  assert not os.path.exists(os.path.join(sweep, "results.jsonl"))
  restarted = start("tuner0")
  try:
    outputs = [p.communicate(timeout=300) for p in (restarted, chief)]
  finally:
    for p in (restarted, chief):
      p.kill()
  for p, (_, err) in zip((restarted, chief), outputs):
    assert p.returncode == 0, err[-3000:]
  lines = {line["trial_id"]: line for line in sweep_lines(sweep)}
  assert sorted(lines) == ["fixed_lr-b16-m0.9-s0", "fixed_lr-b32-m0.9-s0"]
  assert lines["fixed_lr-b16-m0.9-s0"]["resumed_from_step"] > 0  # the killed trial resumed, not restarted
