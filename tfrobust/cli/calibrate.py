"""Calibrate the verdict rules: `python -m tfrobust.calibrate [--from_study=DIR] [--replicates=N] [--seeds=3,6,12,24]
[--docs=docs/verdicts.md]`.

Judges studies whose truth is known (every component at 0, ½, 1 and 2 × its margin) with the report's own code
(tfrobust.report.calibration) and prints per component and seed count P(supported) per truth, the power, P(against)
and the coverage of the 95% intervals, each with its Clopper–Pearson bound. Two sources: synthetic studies on the
full grid, with ρ, the seed sd and the levels of --noise_from (else those measured on the committed mnist5k
study), and, with
--from_study, pseudo-studies relabelled from its real networks (a base study of many seeds at one cell;
tfrobust.report.pseudo_study). --docs writes the tables into that file between its calibration markers. Exit
status 0 when the goals are met, 1 when not, 2 on bad input.
"""

import os
import platform
import subprocess
import sys

from absl import flags

from tfrobust import cli, io

FLAGS = flags.FLAGS
flags.DEFINE_integer("replicates", 800, "Studies per cell (component group × seeds × truth; > 0).")
flags.DEFINE_list("seeds", ["3", "6", "12", "24"], "Seed counts of the table (each ≥ 2).")
flags.DEFINE_string("from_study", None, "A finished sweep of many seeds at one cell (results.jsonl and "
                    "examples.npz), or the .npz of one (pseudo_study.save_base): its networks make the real-noise "
                    "pseudo-studies.")
flags.DEFINE_string("noise_from", None, "A finished study (any grid, per-example outcomes) whose noise, pooled over its "
                    "cells, the synthetic studies take (default: synthetic_study.Noise(), the committed mnist5k study's).")
flags.DEFINE_string("save_base", None, "Write --from_study's networks as a compact .npz base (then exit).")
flags.DEFINE_list("sources", ["synthetic", "real"], "Which tables: synthetic, real (needs --from_study).")
flags.DEFINE_bool("sequential", True, "Also calibrate the --seeds=auto procedure (rows 'auto'): each study judged "
                  "look by look at --looks with the group-sequential rule.")
flags.DEFINE_list("looks", ["3", "6", "12", "24"], "The looks of the sequential rows.")
flags.DEFINE_integer("processes", 2, "Worker processes (≥ 1).")
flags.DEFINE_integer("seed", 0, "Random seed of the simulation.")
flags.DEFINE_string("docs", None, "Markdown file whose calibration block is replaced by the tables.")


def _cpu():
  try:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    name = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
  except (OSError, StopIteration, subprocess.SubprocessError):
    name = platform.processor() or platform.machine()
  return f"{name}, {os.cpu_count()} cores"


def _seeds():
  try:
    seeds = [int(s) for s in FLAGS.seeds]
  except ValueError:
    seeds = []
  if not seeds or min(seeds) < 2:
    raise cli.UsageError(f"--seeds={','.join(FLAGS.seeds)}: needs integers ≥ 2")
  return seeds


def main(argv):
  cli.check_no_arguments(argv)
  if FLAGS.replicates <= 0 or FLAGS.processes < 1:
    raise cli.UsageError("--replicates and --processes must be > 0")
  seeds = _seeds()
  from tfrobust.report import sequential  # pylint: disable=import-outside-toplevel
  if FLAGS.sequential:
    seeds.append(sequential.make_plan(cli.numbers("looks", FLAGS.looks, int), int(FLAGS.looks[-1])))
  unknown = set(FLAGS.sources) - {"synthetic", "real"}
  if unknown or not FLAGS.sources:
    raise cli.UsageError(f"--sources: {', '.join(sorted(unknown)) or 'none'} (synthetic, real)")
  if FLAGS.save_base and not FLAGS.from_study:
    raise cli.UsageError("--save_base needs --from_study")
  if "real" in FLAGS.sources and not FLAGS.from_study:
    raise cli.UsageError("--sources=real needs --from_study=DIR (a sweep of many seeds at one cell)")
  from tfrobust.report import calibration, data, pseudo_study, synthetic_study
  text = None
  if FLAGS.docs:
    try:
      with open(FLAGS.docs, encoding="utf-8") as f:
        text = f.read()
      calibration.replace_block(text, "")
    except (OSError, ValueError) as e:
      raise cli.UsageError(f"--docs={FLAGS.docs}: {e}") from None
  sources = []
  noise = synthetic_study.Noise()
  if FLAGS.from_study:
    try:
      if FLAGS.from_study.endswith(".npz"):
        points, lr, base_b, name = pseudo_study.load_base(FLAGS.from_study)
      else:
        points, _, trials = data.load_observations(FLAGS.from_study)
        lr, base_b = trials[0].hparams.get("lr"), trials[0].hparams.get("base_batch_size")
        t = trials[0]
        name = (f"{len(points)} {t.hparams.get('dataset')} {t.hparams.get('model')} networks, {t.regime} B = "
                f"{t.batch_size}, μ = {t.momentum:g}, η = {t.lr_used:g}, {t.epochs} epochs")
      if FLAGS.save_base:
        pseudo_study.save_base(FLAGS.save_base, points, lr=lr, base_batch_size=base_b, source=name)
        return 0
      real = pseudo_study.RealNoise(points, lr=lr, base_batch_size=base_b, source=name)
    except (OSError, ValueError, KeyError) as e:
      raise cli.UsageError(f"--from_study={FLAGS.from_study}: {e}") from None
    if "real" in FLAGS.sources:
      sources.append(real)
  if FLAGS.noise_from:
    try:
      points, _, trials = data.load_observations(FLAGS.noise_from)
      noise = synthetic_study.noise_of(points, lr=trials[0].hparams.get("lr"),
                                   base_batch_size=trials[0].hparams.get("base_batch_size"),
                                   source=os.path.basename(os.path.normpath(FLAGS.noise_from)))
    except (OSError, ValueError) as e:
      raise cli.UsageError(f"--noise_from={FLAGS.noise_from}: {e}") from None
  if "synthetic" in FLAGS.sources:
    sources.insert(0, synthetic_study.Synthetic(noise))
  blocks = []
  worst = 0
  for source in sources:
    def progress(group, s, t, name=source.name):
      print(f"{name}: {group}, {calibration.seeds_label(s)} seeds, truth {t:g} × margin done", file=sys.stderr,
            flush=True)
    table, seconds = calibration.run(source, FLAGS.replicates, seed_counts=seeds, seed=FLAGS.seed,
                                     processes=FLAGS.processes, progress=progress)
    blocks.append(calibration.markdown(table, source=source, seconds=seconds, replicates=FLAGS.replicates,
                                       cpu=_cpu()))
    worst = max(worst, 1 if calibration.goals(table) else 0)
  block = "\n".join(blocks)
  print(block, end="")
  if text is not None:
    io.write_text(FLAGS.docs, calibration.replace_block(text, block))
  return worst


def run():
  cli.run_main(main, doc=__doc__)
