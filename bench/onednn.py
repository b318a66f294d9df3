"""oneDNN on vs off, per workload, side by side in one run: whole `tfrobust.main` runs (TensorFlow start-up,
training, attacks, Hessian, export) with TF_ENABLE_ONEDNN_OPTS=0 and =1, interleaved (off, on, off, on, ...)
so that a change of machine load hits both alike; the median wall time of each is reported.

This is the evidence behind tfrobust.onednn's default (on, except for dense-only models).

  python bench/onednn.py [--repeats=2] [--output=bench/results/onednn.json]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (name, flags): what each workload runs; the LeNet one is the mnist5k study's per-trial work, shortened.
WORKLOADS = (
    ("MLP / digits (flags/digits_mlp.cfg)", ["--flagfile=flags/digits_mlp.cfg"]),
    ("LeNet / mnist5k, 3 epochs + FGSM/PGD-10 + top eigenvalue",
     ["--flagfile=flags/mnist5k_lenet.cfg", "--epochs=3"]),
)


def run_once(flags, onednn):
  with tempfile.TemporaryDirectory() as out:
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=str(onednn), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tfrobust.main", *flags, f"--output_dir={out}/run"], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
      raise SystemExit(f"run failed ({' '.join(flags)}, oneDNN={onednn}): {proc.stderr.strip()[-500:]}")
    with open(os.path.join(out, "run", "result.json")) as f:
      result = json.load(f)
  timings = {k: v for k, v in result["timings"].items() if isinstance(v, (int, float))}
  return {"wall_s": wall, "timings": timings, "test_accuracy": result["metrics"]["test/accuracy"],
          "onednn_recorded": result["versions"].get("onednn")}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds per workload")
  parser.add_argument("--output", default=os.path.join(ROOT, "bench", "results", "onednn.json"))
  args = parser.parse_args()
  rows = []
  for name, flags in WORKLOADS:
    runs = {0: [], 1: []}
    for _ in range(args.repeats):
      for setting in (0, 1):
        runs[setting].append(run_once(flags, setting))
        print(f"{name}, oneDNN={setting}: {runs[setting][-1]['wall_s']:.1f} s", flush=True)
    row = {"workload": name, "flags": flags}
    for setting, key in ((0, "off"), (1, "on")):
      row[key] = {"wall_s": statistics.median(r["wall_s"] for r in runs[setting]),
                  "train_s": statistics.median(r["timings"].get("train_s", 0) for r in runs[setting]),
                  "robustness_s": statistics.median(r["timings"].get("robustness_s", 0) for r in runs[setting]),
                  "hessian_s": statistics.median(r["timings"].get("hessian_s", 0) for r in runs[setting]),
                  "test_accuracy": [r["test_accuracy"] for r in runs[setting]],
                  "onednn_recorded": runs[setting][0]["onednn_recorded"]}
    row["on_over_off_wall"] = row["on"]["wall_s"] / row["off"]["wall_s"]
    rows.append(row)
  result = {"repeats": args.repeats, "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
            "rows": rows}
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, "w") as f:
    json.dump(result, f, indent=1)
  print("| workload | off: wall (train / attacks / Hessian) s | on: wall (train / attacks / Hessian) s | on/off |")
  print("|---|---|---|---|")
  for r in rows:
    cell = lambda d: (f"{d['wall_s']:.1f} ({d['train_s']:.1f} / {d['robustness_s']:.1f} / "  # noqa: E731
                      f"{d['hessian_s']:.1f})")
    print(f"| {r['workload']} | {cell(r['off'])} | {cell(r['on'])} | {r['on_over_off_wall']:.2f} |")
  print(f"wrote {args.output}")


if __name__ == "__main__":
  main()
