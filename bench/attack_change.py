"""Does the attack change the answer? A finished study's networks (those of some seeds, or of some cells) attacked
again with another attack (by default the autoattack sequence) at the study's report ε, from their final
checkpoints, against the attack the study used. Writes, per network, both robust accuracies and the examples each
attack alone fools. With whole seeds, also per adversarial component of the report: each judged part's point
estimate on these networks under both attacks, and the verdict the rule (report.claims.decide) gives the study's
committed interval moved by the change: what the study would say had every network moved as these did, an
extrapolation from the attacked seeds to all.

  python bench/attack_change.py --sweep_dir=runs/mnist5k_study_auto --seeds=0 [--attack=autoattack]
      [--cells=constant_ratio-b256-m0.9] [--work_dir=DIR] [--output=bench/results/attack_change_mnist5k.json]

The attack runs are kept per trial in --work_dir (examples.npz and seconds), so a killed run resumes.
"""

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# pylint: disable=wrong-import-position
from timing import cpu_model  # noqa: E402  (bench/timing.py)
from tfrobust import io  # noqa: E402
from tfrobust.records import names  # noqa: E402
from tfrobust.records import run as run_records  # noqa: E402
from tfrobust.records import sweep as sweep_records  # noqa: E402

SECONDS_FILE = "attack.json"


def restore(trial_dir, dataset, strategy, hparams):
  """The trial's network with the weights of its newest checkpoint (its final weights: a finished trial)."""
  import tensorflow as tf
  from tfrobust import models
  from tfrobust.train import driver
  from tfrobust.train.step import Trainer
  build = lambda: models.build_model(hparams["model"], dataset.input_shape, dataset.num_classes,  # noqa: E731
                                     batchnorm=hparams["batchnorm"], seed=0)
  trainer = Trainer(build, strategy, global_batch_size=hparams["batch_size"], steps_per_call=1, jit_compile=False)
  ckpt, step, _ = driver.make_checkpoint(trainer)
  manager = tf.train.CheckpointManager(ckpt, os.path.join(trial_dir, names.CHECKPOINTS_DIR), max_to_keep=None)
  if driver.restore_latest(ckpt, manager) is None:
    raise SystemExit(f"error: {trial_dir} holds no checkpoint")
  return trainer.model, int(step.numpy())


def attack_config(hparams, attack, eps):
  from tfrobust.evaluators.robustness.config import RobustnessConfig
  study = RobustnessConfig.from_hparams(hparams["evaluators"]["robustness"])
  return dataclasses.replace(study, attacks=(attack,), norms=("inf",), eps=(eps,), deep_check=False).validate()


def attack_all(sweep_dir, trials, attack, eps, work_dir, data_dir=None):
  """Attacks every trial not yet done in work_dir; {trial_id: seconds}."""
  from tfrobust import data, distribute, evaluators
  from tfrobust.experiment import outputs
  dataset, strategy, seconds = None, None, {}
  for n, line in enumerate(trials, 1):
    out = os.path.join(work_dir, line["trial_id"])
    done = os.path.join(out, SECONDS_FILE)
    if os.path.isfile(done):
      seconds[line["trial_id"]] = io.read_json(done)["seconds"]
      continue
    trial_dir = names.trial_dir(sweep_dir, line["trial_id"])
    hparams = run_records.read_hparams(trial_dir)
    if dataset is None:
      dataset, strategy = data.load_dataset(hparams["dataset"], data_dir), distribute.make_strategy()
    model, step = restore(trial_dir, dataset, strategy, hparams)
    t0 = time.perf_counter()
    evaluation = evaluators.get("robustness").evaluate(model, dataset, attack_config(hparams, attack, eps),
                                                       strategy=strategy, progress=False)
    seconds[line["trial_id"]] = time.perf_counter() - t0
    os.makedirs(out, exist_ok=True)
    clean = outputs.clean_correct(model, dataset.x_test, dataset.y_test, 1000)
    outputs.write_examples({"robustness": evaluation}, out, clean)
    section = outputs.sections({"robustness": evaluation})["robustness"]
    io.write_json(done, {"seconds": seconds[line["trial_id"]], "step": step, "robustness": section})
    print(f"[{n}/{len(trials)}] {line['trial_id']}: {attack} at eps {eps:g} in {seconds[line['trial_id']]:.0f} s",
          flush=True)
  return seconds


def _subset_copy(sweep_dir, trials, seeds, target, new_attack=None):
  """A fixed-seed sweep of `trials` alone in `target` (their lines and examples.npz); with new_attack=(work_dir,
  attack), each trial also carries that attack's result and per-example outcomes, which the report then prefers
  (records.trial.ATTACK_PREFERENCE) -- when it ranks above the study's attack."""
  sweep = dict(sweep_records.read_sweep(sweep_dir))
  sweep.pop("sequential", None)
  sweep["seeds"] = sorted(seeds)
  os.makedirs(target)
  io.write_json(os.path.join(target, names.SWEEP_FILE), sweep)
  lines = []
  for line in trials:
    line = json.loads(json.dumps(line))
    src = os.path.join(names.trial_dir(sweep_dir, line["trial_id"]), names.EXAMPLES_FILE)
    dst = names.trial_dir(target, line["trial_id"])
    os.makedirs(dst)
    with np.load(src) as z:
      arrays = {k: z[k] for k in z.files}
    if new_attack:
      work_dir, attack = new_attack
      done = io.read_json(os.path.join(work_dir, line["trial_id"], SECONDS_FILE))
      line["robustness"]["accuracy"] += [r for r in done["robustness"]["accuracy"] if r["attack"] == attack]
      with np.load(os.path.join(work_dir, line["trial_id"], names.EXAMPLES_FILE)) as z:
        arrays.update({k: z[k] for k in z.files if k.startswith(f"curve.{attack}.")})
    np.savez(os.path.join(dst, names.EXAMPLES_FILE), **arrays)
    lines.append(line)
  with open(os.path.join(target, names.RESULTS_FILE), "w", encoding="utf-8") as f:
    f.writelines(json.dumps(line) + "\n" for line in lines)
  return target


def _adv_rows(sweep_dir):
  from tfrobust.report import build
  ctx = build.build(sweep_dir)
  rows = {(r["claim"], r["component"]): r for r in ctx.rows if r["component"] == "adv" and r["control"] == "all"}
  return ctx.choice, rows


def _judged(row):
  return [p for p in row.get("parts") or [] if p.get("judged")]


def moved_verdict(kind, ci, change, margin, n_seeds):
  """The rule's verdict (report.claims.decide) on the interval `ci` moved by `change`: what the committed study
  would say had every network moved as these did (an extrapolation from the attacked networks to all)."""
  from tfrobust.report import claims
  return claims.decide(kind, (ci[0] + change, ci[1] + change), margin=margin, n_seeds=n_seeds)[0]


def compare(sweep_dir, trials, attack, eps, work_dir, *, components=True):
  """Per network: both attacks' robust accuracies at eps and the examples each alone fools; per adversarial
  component: the point estimates on these networks under each attack, beside the study's own interval."""
  import tempfile
  from tfrobust.records.trial import adv_accuracy, choose_adv, parse_trial, same_eps
  networks = []
  for line in trials:
    trial = parse_trial(line)
    study_choice = choose_adv([trial], eps)
    study_acc = adv_accuracy(trial, study_choice)
    new = io.read_json(os.path.join(work_dir, line["trial_id"], SECONDS_FILE))["robustness"]["accuracy"]
    new_acc = [r["accuracy"] for r in new if r["attack"] == attack and same_eps(r["eps"], eps)][0]
    old_ex = run_records.read_examples(names.trial_dir(sweep_dir, line["trial_id"]))
    new_ex = run_records.read_examples(os.path.join(work_dir, line["trial_id"]))
    old_c, new_c = old_ex.curves[(study_choice.attack, "inf")], new_ex.curves[(attack, "inf")]
    old_ok = old_c.correct[[same_eps(e, eps) for e in old_c.eps].index(True)]
    new_ok = new_c.correct[[same_eps(e, eps) for e in new_c.eps].index(True)]
    networks.append({"trial_id": line["trial_id"], "study_attack": study_choice.attack,
                     "study_accuracy": study_acc, "new_accuracy": new_acc, "shift_points": 100 * (new_acc - study_acc),
                     "fooled_only_by_new": int(np.sum(old_ok & ~new_ok)),
                     "fooled_only_by_study": int(np.sum(new_ok & ~old_ok))})
  shifts = [n["shift_points"] for n in networks]
  summary = {"attack": attack, "eps": eps, "networks": networks, "components": [],
             "shift_points": {"mean": float(np.mean(shifts)), "min": float(np.min(shifts)),
                              "max": float(np.max(shifts))}}
  if not components:
    return summary
  committed = {}
  verdicts_path = os.path.join(sweep_dir, names.REPORT_DIR, "verdicts.json")
  if os.path.isfile(verdicts_path):
    committed = {(r["claim"], r["component"]): r for r in io.read_json(verdicts_path)
                 if r["component"] == "adv" and r["control"] == "all"}
  seeds = {line["hparams"]["seed"] for line in trials}
  with tempfile.TemporaryDirectory() as tmp:
    _, before = _adv_rows(_subset_copy(sweep_dir, trials, seeds, os.path.join(tmp, "study")))
    choice, after = _adv_rows(_subset_copy(sweep_dir, trials, seeds, os.path.join(tmp, "new"), (work_dir, attack)))
  if choice.attack != attack:
    raise SystemExit(f"error: the report prefers {choice.attack} to {attack}; nothing to compare")
  from tfrobust.report import claims
  components = []
  for key in sorted(before):
    c, kind = committed.get(key, {}), before[key]["rule"]
    parts = []
    for i, (a, b) in enumerate(zip(_judged(before[key]), _judged(after[key]))):
      k = _judged(c)[i] if i < len(_judged(c)) else {}
      change = None if a.get("estimate") is None or b.get("estimate") is None else b["estimate"] - a["estimate"]
      parts.append({"part": a["name"], "estimate_study_attack": a.get("estimate"),
                    "estimate_new_attack": b.get("estimate"), "change": change,
                    "committed_verdict": k.get("verdict"), "committed_ci": k.get("ci"),
                    "moved_verdict": (moved_verdict(kind, k["ci"], change, c["margin"], k.get("n_seeds"))
                                      if k.get("ci") and change is not None else k.get("verdict"))})
    moved = claims.combine_parts([p["moved_verdict"] for p in parts]) if parts else None
    components.append({"component": f"{key[0]}.adv", "committed_verdict": c.get("verdict"),
                       "committed_n_seeds": c.get("n_seeds"), "margin": c.get("margin"), "parts": parts,
                       "moved_verdict": moved, "verdict_changes": moved != c.get("verdict")})
  return dict(summary, components=components)


def _fmt(x, digits=2):
  return "-" if x is None else f"{x:+.{digits}f}"


def render(result):
  from tfrobust.report.render import md_table
  out = [f"{result['attack']} against the study's attack at eps {result['eps']:g}, seeds "
         f"{','.join(map(str, result['seeds']))}, {len(result['networks'])} networks ({result['cpu']}):",
         md_table(["network", "study attack", "study", "new", "shift (points)", "fooled only by new",
                   "only by study"],
                  [[n["trial_id"], n["study_attack"], f"{n['study_accuracy']:.3f}", f"{n['new_accuracy']:.3f}",
                    f"{n['shift_points']:+.1f}", n["fooled_only_by_new"], n["fooled_only_by_study"]]
                   for n in result["networks"]])]
  s = result["shift_points"]
  out.append(f"shift in points: mean {s['mean']:+.2f}, range [{s['min']:+.1f}, {s['max']:+.1f}]")
  if not result["components"]:
    return "\n".join(out)
  rows = []
  for c in result["components"]:
    for p in c["parts"]:
      ci = p["committed_ci"]
      committed = f"{p['committed_verdict']} [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "-"
      rows.append([f"{c['component']}: {p['part']}", committed, _fmt(p["estimate_study_attack"]),
                   _fmt(p["estimate_new_attack"]), _fmt(p["change"]), p["moved_verdict"]])
  out += ["", md_table(["component: judged part", "committed verdict [95% CI]", "estimate, study attack",
                        "new attack", "change", "verdict, CI moved by the change"], rows)]
  out.append("component verdicts, committed -> with every interval moved: " + "; ".join(
      f"{c['component']} {c['committed_verdict']} -> {c['moved_verdict']}" for c in result["components"]))
  return "\n".join(out)


def chosen_trials(sweep_dir, seeds, cells=None):
  lines = sweep_records.read_lines(sweep_dir).by_id.values()
  return [line for line in lines if line.get("status") == "ok" and not line.get("diverged")
          and line["hparams"]["seed"] in seeds and (not cells or line["trial_id"].rsplit("-s", 1)[0] in cells)]


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--sweep_dir", required=True)
  parser.add_argument("--seeds", default="0", help="the seeds whose networks are attacked again (comma-separated)")
  parser.add_argument("--cells", default="", help="only these cells (trial ids without the seed, comma-separated, "
                      "e.g. constant_ratio-b256-m0.9); the components are then not compared")
  parser.add_argument("--attack", default="autoattack")
  parser.add_argument("--data_dir", default=None, help="the study's --data_dir (tfds datasets; runs do not record it)")
  parser.add_argument("--work_dir", default=None, help="per-trial attack results (default: SWEEP_DIR/attack_change)")
  parser.add_argument("--output", default=None, help="JSON written here as well as printed")
  args = parser.parse_args()
  sweep = sweep_records.read_sweep(args.sweep_dir) or {}
  eps = float(sweep.get("report_eps") or 0.0)
  if eps <= 0:
    sys.exit("error: sweep.json gives no report_eps to attack at")
  seeds = {int(s) for s in args.seeds.split(",")}
  cells = set(filter(None, args.cells.split(",")))
  trials = chosen_trials(args.sweep_dir, seeds, cells)
  if not trials:
    sys.exit(f"error: no finished trial of seeds {args.seeds} in {args.sweep_dir}")
  work_dir = args.work_dir or os.path.join(args.sweep_dir, "attack_change")
  from tfrobust import onednn  # as the study chose for its model, before TensorFlow loads
  onednn.configure(trials[0]["hparams"]["model"])
  start = time.perf_counter()
  seconds = attack_all(args.sweep_dir, trials, args.attack, eps, work_dir, args.data_dir)
  result = dict(compare(args.sweep_dir, trials, args.attack, eps, work_dir, components=not cells),
                attack_seconds=seconds,
                wall_s=time.perf_counter() - start, cpu=cpu_model(),
                sweep_dir=os.path.basename(os.path.normpath(args.sweep_dir)), seeds=sorted(seeds))
  print(render(result))
  if args.output:
    io.write_json(args.output, result)


if __name__ == "__main__":
  main()
