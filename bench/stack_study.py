"""A whole study trained one network at a time (--stack_size=1) against the same study with stacks (the default,
--stack_size=auto, or --stacked=K), side by side in one run: the studies run one after the other, each in a fresh
process, on the same flag file. Reports the trials' time (the sum of results.jsonl's wall_s: training, attacks,
Hessian and writes of every trial, stacks included) and the process's wall time, the per-trial differences of the
headline numbers against the seed-to-seed spread of the unstacked study, and whether any verdict differs.

  python bench/stack_study.py --flagfile=flags/digits_study.cfg [--stacked=auto] [--extra='--seeds=0,1']
      [--output=bench/results/stack_study_digits.json]

The order alternates with --repeats > 1 (unstacked first, then stacked first), so that a machine slowing down
hits both alike. Never run it beside another job: its figures would be worthless.
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from timing import cpu_model  # noqa: E402  pylint: disable=wrong-import-position (bench/timing.py)
from tfrobust.records.trial import headline, parse_trial  # noqa: E402  pylint: disable=wrong-import-position

METRICS = ("clean", "adversarial", "top_eigenvalue")


def run_study(flagfile, stack_size, extra, sweep_dir):
  """One study in a fresh process; (wall seconds, results.jsonl lines, verdicts.json rows)."""
  cmd = [sys.executable, "-m", "tfrobust.sweep", f"--flagfile={flagfile}", f"--stack_size={stack_size}",
         f"--sweep_dir={sweep_dir}", *extra]
  start = time.perf_counter()
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT))
  wall = time.perf_counter() - start
  if proc.returncode != 0:
    sys.exit(f"error: {' '.join(map(shlex.quote, cmd))} failed:\n{proc.stderr[-2000:]}")
  with open(os.path.join(sweep_dir, "results.jsonl"), encoding="utf-8") as f:
    lines = [json.loads(line) for line in f]
  with open(os.path.join(sweep_dir, "report", "verdicts.json"), encoding="utf-8") as f:
    verdicts = json.load(f)
  return wall, lines, verdicts


def numbers(lines, report_eps):
  """{trial id: {metric: value}} of the finished trials."""
  out = {}
  for line in lines:
    if line.get("status") != "ok":
      continue
    adv, eig = headline(parse_trial(line), report_eps)
    out[line["trial_id"]] = {"clean": line["metrics"]["test/accuracy"], "adversarial": adv, "top_eigenvalue": eig}
  return out


def cell(trial_id):
  return trial_id.rsplit("-s", 1)[0]


def compare(alone, stacked):
  """Per metric: the largest and median |stacked − alone| over trials, and the median seed-to-seed standard
  deviation of the unstacked cells (the noise the difference is held against)."""
  out = {}
  for metric in METRICS:
    diffs = [abs(stacked[k][metric] - v[metric]) for k, v in alone.items()
             if k in stacked and v[metric] is not None and stacked[k][metric] is not None]
    cells = {}
    for k, v in alone.items():
      if v[metric] is not None:
        cells.setdefault(cell(k), []).append(v[metric])
    sds = [np.std(v, ddof=1) for v in cells.values() if len(v) > 1]
    if diffs:
      out[metric] = {"max_abs_diff": float(np.max(diffs)), "median_abs_diff": float(np.median(diffs)),
                     "median_seed_sd": float(np.median(sds)) if sds else None, "trials": len(diffs)}
  return out


def verdict_changes(a, b):
  key = lambda r: (r["claim"], r["component"], r["control"])  # noqa: E731
  va = {key(r): r["verdict"] for r in a}
  return [{"row": list(k), "unstacked": va[k], "stacked": r["verdict"]} for r in b
          for k in [key(r)] if k in va and va[k] != r["verdict"]]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--flagfile", required=True)
  parser.add_argument("--stacked", default="auto", help="--stack_size of the stacked study (auto or K)")
  parser.add_argument("--extra", default="", help="more tfrobust.sweep flags for both studies (quoted)")
  parser.add_argument("--repeats", type=int, default=1)
  parser.add_argument("--output", default=None)
  parser.add_argument("--keep", default=None, help="keep the sweeps under this directory")
  args = parser.parse_args()
  extra = shlex.split(args.extra)
  base = args.keep or tempfile.mkdtemp(prefix="stack_study-")
  runs = {"alone": [], "stacked": []}
  last = {}
  for r in range(args.repeats):
    order = [("alone", "1"), ("stacked", args.stacked)]
    for name, size in (order if r % 2 == 0 else order[::-1]):
      sweep = os.path.join(base, f"{name}-{r}")
      shutil.rmtree(sweep, ignore_errors=True)
      wall, lines, verdicts = run_study(args.flagfile, size, extra, sweep)
      trials = sum(line.get("wall_s", 0.0) for line in lines)
      runs[name].append({"process_s": wall, "trials_s": trials, "trials": len(lines)})
      last[name] = (lines, verdicts)
      print(f"{name} (--stack_size={size}), round {r + 1}: trials {trials:.1f} s, process {wall:.1f} s", flush=True)
  with open(os.path.join(base, "alone-0", "sweep.json"), encoding="utf-8") as f:
    report_eps = json.load(f).get("report_eps")
  alone, stacked = (numbers(last[n][0], report_eps) for n in ("alone", "stacked"))
  med = {n: {k: float(np.median([r[k] for r in runs[n]])) for k in ("process_s", "trials_s")} for n in runs}
  result = {"flagfile": args.flagfile, "extra": extra, "stacked": args.stacked, "runs": runs, "median": med,
            "speedup_trials": med["alone"]["trials_s"] / med["stacked"]["trials_s"],
            "speedup_process": med["alone"]["process_s"] / med["stacked"]["process_s"],
            "differences": compare(alone, stacked), "verdict_changes": verdict_changes(*(last[n][1] for n in runs)),
            "cpu": cpu_model(), "cpus": os.cpu_count()}
  print(f"trials: {med['alone']['trials_s']:.1f} s alone, {med['stacked']['trials_s']:.1f} s stacked: "
        f"{result['speedup_trials']:.2f}x; process {result['speedup_process']:.2f}x ({result['cpu']})")
  for metric, d in result["differences"].items():
    print(f"  {metric}: max |diff| {d['max_abs_diff']:.4g}, median {d['median_abs_diff']:.4g}, "
          f"median seed sd {d['median_seed_sd']}")
  print(f"  verdicts changed: {len(result['verdict_changes'])}", result["verdict_changes"][:5])
  if args.output:
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1)
  if not args.keep:
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
  main()
