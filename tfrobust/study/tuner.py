"""The keras-tuner adapter of the study: the grid as a keras-tuner search space, an oracle that enumerates it and
survives reloads, and a tuner whose trial is one grid point trained by the study runner (runner.py). In a stacked
study the unit of training is the stack: the trial of a stack's first point handed out trains the whole stack, and
the oracle holds the stack's other points back until its networks are handed to their trials (GridOracle.waits),
so that one worker trains each stack and every worker can then attack and measure its networks.

keras-tuner 1.4.8 problems met here, and what this module does:
- GridSearchOracle keeps its enumeration cursor (`_ordered_ids`, `_populate_next`) out of its saved state, so a
  reloaded GridSearch fails with KeyError or stops early (keras-team/keras-tuner#1055). `GridOracle` below
  derives the next point from the oracle's own saved state instead: the first grid point whose values are not
  in `_tried_so_far`; interrupted trials come back through keras-tuner's retry queue.
- In distributed mode the chief (the oracle) exits only when every worker has asked for a trial after the grid
  is exhausted and none is running (#254, #344); a killed worker's trial stays "running" on the chief. Recovery:
  start a worker again with the same KERASTUNER_TUNER_ID — the chief hands it the same trial, which resumes from
  its checkpoint (tests/study/test_tuner.py). Trials can be skipped or uneven (#596): after the search every
  process checks results.jsonl against the grid and runs (worker/local) or reports (chief) what is missing.
- Idle workers poll the chief in a tight loop while the last trials run; `pre_create_trial` sleeps a moment after
  an answer with nothing to do, so that polling does not take the CPU from training (#990 is the 5-minute RPC
  timeout of such workers). A worker that has just finished a trial asks for the next at once.
- The chief's server (`oracle_chief.start_server`) is left listening once its grid is done, and checks every
  20 s whether it may stop. A --seeds=auto study serves each look's grid on the same port in turn, so the chief
  serves through `serve` below, which stops its server when its look is done and checks every second; a worker
  starts a look only once the oracle it reaches serves that look's seeds (not the last look's, still closing),
  and skips it when the oracle already serves a later look's. A worker whose check passed just before the look's
  server closed reaches the next look's oracle with its first request: run_trial then takes the seeds served now.
- An exception in a trial would count towards keras-tuner's `max_consecutive_failed_trials` and stop the
  search; the runner records it in results.jsonl (status "failed", the error) and the search goes on.
"""

import itertools
import math
import os
import time
from concurrent import futures

import keras_tuner

from tfrobust.records import names
from tfrobust.study.grid import GridPoint

OBJECTIVE = "test_accuracy"  # keras-tuner's name for result.json's metrics["test/accuracy"]
# How long a distributed worker waits before asking the oracle again after an answer with nothing to do (#990: no
# busy polling).
WORKER_POLL_PAUSE_S = 0.5
# How often a chief checks whether its look is done, and a worker whether the oracle serves its look yet.
LOOK_POLL_S = 1.0


def search_space(grid):
  hp = keras_tuner.HyperParameters()
  hp.Choice("regime", list(grid.regimes))
  hp.Choice("batch_size", list(grid.batch_sizes))
  hp.Choice("momentum", list(grid.momenta))
  hp.Choice("seed", list(grid.seeds))
  return hp


def point_of(values):
  """The grid point of a trial's hyperparameter values."""
  return GridPoint(values["regime"], int(values["batch_size"]), float(values["momentum"]), int(values["seed"]))


class GridOracle(keras_tuner.Oracle):
  """Exhaustive grid whose cursor is the oracle's saved state (see the module docstring, #1055). A point for which
  `waits(key, keys of the running trials)` holds is handed out later: the point of a stack that another trial is
  training (study/stacks.py), so that one worker trains each stack and the others take other points meanwhile."""

  waits = None  # set by StudyTuner when the study trains stacks

  def populate_space(self, trial_id):
    status = keras_tuner.engine.trial.TrialStatus
    space = self.get_space().space
    running = [point_of(t.hyperparameters.values).key for t in self.ongoing_trials.values()] if self.waits else ()
    for values in itertools.product(*[hp.values for hp in space]):
      candidate = {hp.name: v for hp, v in zip(space, values)}
      if not self._duplicate(candidate) and not (running and self.waits(point_of(candidate).key, running)):
        return {"status": status.RUNNING, "values": candidate}
    if self.ongoing_trials:
      return {"status": status.IDLE, "values": None}
    return {"status": status.STOPPED, "values": None}


def make_oracle(grid):
  return GridOracle(objective=keras_tuner.Objective(OBJECTIVE, "max"), max_trials=len(grid.points()),
                    hyperparameters=search_space(grid), allow_new_entries=False, tune_new_entries=False,
                    max_retries_per_trial=0, max_consecutive_failed_trials=len(grid.points()) + 1)


def is_distributed():
  """Whether this process is one of a distributed study (an oracle address is set)."""
  return "KERASTUNER_ORACLE_IP" in os.environ


def is_oracle():
  """Whether this process is keras-tuner's chief, the oracle that hands out trials (it trains none itself).
  Not tf.distribute's chief (tfrobust.distribute.is_chief: the worker that writes a run's files)."""
  return is_distributed() and "chief" in os.environ.get("KERASTUNER_TUNER_ID", "")


def is_worker():
  """Whether this process is a distributed study's worker (it trains the points the chief hands it)."""
  return is_distributed() and not is_oracle()


def serve(oracle):
  """keras-tuner's `oracle_chief.start_server`, except that the server stops when every trial has ended and every
  worker has been told (the same test, `exit_chief`), so that the next look's oracle can take the port."""
  import grpc  # pylint: disable=import-outside-toplevel  (keras-tuner imports it late too: protobuf versions)
  from keras_tuner.src import protos  # pylint: disable=import-outside-toplevel
  from keras_tuner.src.distribute import oracle_chief  # pylint: disable=import-outside-toplevel
  server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
  servicer = oracle_chief.OracleServicer(oracle)
  protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
  address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
  if not server.add_insecure_port(address):
    raise RuntimeError(f"the oracle cannot listen on {address}")
  server.start()
  try:
    while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
      time.sleep(LOOK_POLL_S)
  finally:
    server.stop(grace=5).wait()  # a worker's call in flight is answered, not cancelled


def served_seeds(oracle):
  """The seeds of the grid an oracle (a worker's client of the chief's) serves."""
  return sorted(next((hp.values for hp in oracle.get_space().space if hp.name == "seed"), []))


class StudyTuner(keras_tuner.engine.base_tuner.BaseTuner):
  """run_trial trains one grid point through the study's runner and returns its clean accuracy."""

  _asked_since_trial = False  # whether this worker has asked the oracle for a trial since it last ran one

  def __init__(self, study, *, waits=None, **kwargs):
    self.study = study
    super().__init__(oracle=make_oracle(study.grid), directory=study.sweep_dir,
                     project_name=names.tuner_dir(study.look), overwrite=False, **kwargs)
    self.oracle.waits = waits

  def run_trial(self, trial, **unused_search_kwargs):  # search(verbose=...) reaches run_trial too
    self._asked_since_trial = False
    point = point_of(trial.hyperparameters.values)
    if point.seed not in self.study.grid.seeds:
      # A worker that checked the chief's look and then asked for its first point as that look's server closed
      # reached the next look's oracle: this point, and the rest of this search, belong to the seeds served now.
      self.study = self.study.with_seeds(served_seeds(self.oracle))
    line = self.study.run_point(point, tuner_trial_id=trial.trial_id)
    accuracy = (line.get("metrics") or {}).get("test/accuracy")
    return {OBJECTIVE: float(accuracy) if accuracy is not None and math.isfinite(accuracy) else 0.0}

  def search(self, *args, **kwargs):
    if is_oracle():
      self.oracle.verbose = kwargs.get("verbose", self.oracle.verbose)
      self.save()
      serve(self.oracle)
      return
    if is_distributed():  # the previous look's oracle may still be closing on the chief's port
      mine = sorted(self.study.grid.seeds)
      served = served_seeds(self.oracle)
      while served != mine:
        if len(served) > len(mine):
          return  # the chief serves a later look: this one is done
        time.sleep(LOOK_POLL_S)
        served = served_seeds(self.oracle)
    super().search(*args, **kwargs)

  def on_search_begin(self):
    self.save()  # so that a sweep killed during its first trial reloads this oracle

  def pre_create_trial(self):
    """Before each request for a trial (keras-tuner's search loop): a distributed worker whose last request got
    nothing to do (IDLE: the last trials are running, or a stack's points are held back) waits a moment."""
    if is_distributed() and self._asked_since_trial:
      time.sleep(WORKER_POLL_PAUSE_S)
    self._asked_since_trial = True
