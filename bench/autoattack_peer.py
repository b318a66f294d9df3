"""tfrobust's APGD-CE and autoattack sequence against a PyTorch AutoAttack implementation on the same weights: robust
accuracy per ε on the study's L∞ grid (issue 15's goal: within 0.5 point of the peer at every ε).

  .venv/bin/pip install torch && .venv/bin/pip install --no-deps torchattacks   # the peer, bench only
  .venv/bin/python bench/autoattack_peer.py [--nets=mnist5k_lenet,digits_mlp --examples=1000]
  .venv/bin/python bench/autoattack_peer.py --nets=digits_mlp --examples=200 --apgd_steps=20 --square_queries=200

The peer is `torchattacks` (PyPI; its APGD, APGDT and Square follow Croce & Hein's reference code). torchattacks
pins requests~=2.25.1, which would downgrade the environment's: install it with --no-deps (its imports need only
torch, numpy, scipy). TensorFlow and PyTorch in one process segfault here, so the TF process trains the network
(bench/attack_throughput.py's `trained`, the study's training), runs tfrobust's attacks and writes weights and
images to an .npz; a child process (no TensorFlow) loads them into the same architecture (bench/torch_lenet.py for
LeNet), refuses to go on unless its logits agree with TF's, and runs the peer with the same budget: APGD-CE
(--apgd_steps, 1 restart), then APGDT (9 target classes, 1 restart each) on what it left, then Square
(--square_queries) on what both left. FAB-T, the third attack of AutoAttack's standard sequence, is in neither.
The peer attacks every ε on its own; its "envelope" row is its running AND over ε (an example fooled at a smaller
ε counts as fooled), what tfrobust's early stop reports. Accuracies, not timings: contention does not matter.
Writes --output (JSON) and prints a Markdown table.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))
sys.path.insert(0, BENCH)

LOGIT_TOL = 1e-4  # max |logit_tf − logit_torch| / max(1, max |logit|)
GOAL_POINTS = 0.5  # issue 15: within half a point of the peer at every ε


def parse_args():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--nets", default="mnist5k_lenet,digits_mlp")
  p.add_argument("--examples", type=int, default=1000)
  p.add_argument("--epochs", type=int, default=None, help="override the study's epochs")
  p.add_argument("--apgd_steps", type=int, default=100)
  p.add_argument("--square_queries", type=int, default=5000)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--output", default=os.path.join(BENCH, "results", "autoattack_peer.json"))
  p.add_argument("--torch_child", default=None, help=argparse.SUPPRESS)  # internal: NPZ,OUT_JSON
  return p.parse_args()


# ----------------------------------------------------------------------------------------- PyTorch (child)


def torch_model(arch, input_shape, weights):
  """The Keras network in PyTorch (NCHW), with its weights."""
  import torch
  from torch import nn
  if arch == "lenet":
    import torch_lenet
    model = torch_lenet.lenet(input_shape)
    torch_lenet.load_keras_weights(model, weights, input_shape)
    return model.eval()
  if input_shape[2] != 1:
    raise ValueError("the MLP import assumes one channel (NHWC and NCHW flatten alike)")
  sizes = [w.shape for w in weights[0::2]]
  layers = [nn.Flatten()]
  for i, (fan_in, fan_out) in enumerate(sizes):
    layers.append(nn.Linear(fan_in, fan_out))
    if i < len(sizes) - 1:
      layers.append(nn.ReLU())
  model = nn.Sequential(*layers)
  with torch.no_grad():
    for layer, w, b in zip([m for m in model if isinstance(m, nn.Linear)], weights[0::2], weights[1::2]):
      layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
      layer.bias.copy_(torch.from_numpy(b))
  return model.eval()


def torch_child(args):
  npz_path, out_path = args.torch_child.split(",")
  import torch
  import torchattacks
  f = np.load(npz_path)
  input_shape = tuple(int(s) for s in f["input_shape"])
  weights = [f[f"w{i}"] for i in range(int(f["num_weights"]))]
  model = torch_model(str(f["arch"]), input_shape, weights)
  x = torch.from_numpy(np.ascontiguousarray(f["x"].transpose(0, 3, 1, 2)))
  y = torch.from_numpy(f["y"].astype(np.int64))
  with torch.no_grad():
    logits = model(x).numpy()
  err = float(np.max(np.abs(logits - f["logits"])) / max(1.0, float(np.max(np.abs(f["logits"])))))
  out = {"logit_max_rel_diff": err, "torch": torch.__version__, "torchattacks": torchattacks.__version__}
  if not err <= LOGIT_TOL:
    out["error"] = f"PyTorch's logits differ from TensorFlow's: {err:.2e} > {LOGIT_TOL:g} (weight layout?)"
    _write(out_path, out)
    sys.exit(out["error"])
  classes = logits.shape[1]

  def still_correct(attack, idx):
    """Which of the examples idx the model still classifies right after `attack`."""
    if len(idx) == 0:
      return np.zeros(0, bool)
    adv = attack(x[idx], y[idx])
    with torch.no_grad():
      return (model(adv).argmax(1) == y[idx]).numpy()

  clean = logits.argmax(1) == f["y"]
  rows = {"apgd_ce": [], "autoattack": [], "autoattack_stage_counts": []}
  for eps in f["grid"]:
    eps = float(eps)
    if eps == 0:
      rows["apgd_ce"].append(clean.tolist())
      rows["autoattack"].append(clean.tolist())
      continue
    kw = {"norm": "Linf", "eps": eps, "seed": args.seed}
    ce = torchattacks.APGD(model, steps=args.apgd_steps, n_restarts=1, loss="ce", **kw)
    alive = np.flatnonzero(clean)
    alive = alive[still_correct(ce, alive)]
    after_ce = alive.copy()
    rows["apgd_ce"].append(np.isin(np.arange(len(clean)), after_ce).tolist())
    apgdt = torchattacks.APGDT(model, steps=args.apgd_steps, n_restarts=1, n_classes=classes, **kw)
    alive = alive[still_correct(apgdt, alive)]
    after_t = alive.copy()
    sq = torchattacks.Square(model, n_queries=args.square_queries, n_restarts=1, **kw)
    alive = alive[still_correct(sq, alive)]
    rows["autoattack"].append(np.isin(np.arange(len(clean)), alive).tolist())
    rows["autoattack_stage_counts"].append([len(after_ce), len(after_t), len(alive)])
  out.update(rows)
  _write(out_path, out)


def _write(path, obj):
  with open(path, "w") as fh:
    json.dump(obj, fh)


# ------------------------------------------------------------------------------------------ TensorFlow


def tf_main(args):
  import attack_throughput as bench  # the study's networks and training; configures oneDNN before TF loads
  from tfrobust import io
  from tfrobust.evaluators.robustness.config import RobustnessConfig
  from tfrobust.evaluators.robustness.runner import AttackRunner
  from tfrobust.evaluators.robustness.sequences import Budget, sweep
  budget = Budget(pgd_steps=bench.PGD_STEPS, pgd_restarts=bench.PGD_RESTARTS, apgd_steps=args.apgd_steps,
                  apgd_restarts=1, square_queries=args.square_queries)
  record = {"examples": args.examples, "apgd_steps": args.apgd_steps, "square_queries": args.square_queries,
            "goal_points": GOAL_POINTS, "nets": {}}
  lines = []
  for name in args.nets.split(","):
    model, ds = bench.trained(name, args.epochs)
    x, y = ds.x_test[:args.examples], ds.y_test[:args.examples]
    grid = bench.NETS[name]["grid"]
    runner = AttackRunner(model, x, y, batch_size=500, seed=args.seed)
    ours = {attack: sweep(runner, attack, "inf", grid, budget, classes=ds.num_classes,
                          step_size=RobustnessConfig().step_size)[0] for attack in ("apgd_ce", "autoattack")}
    weights = [np.asarray(v) for v in model.trainable_variables]
    tmp = tempfile.mkdtemp(prefix="autoattack_peer_")
    npz, out_json = os.path.join(tmp, "exchange.npz"), os.path.join(tmp, "peer.json")
    np.savez(npz, x=x, y=y, logits=model(x).numpy(), grid=np.array(grid), input_shape=np.array(ds.input_shape),
             arch=bench.NETS[name]["model"], num_weights=len(weights), **{f"w{i}": w for i, w in enumerate(weights)})
    child = [sys.executable, os.path.abspath(__file__), f"--torch_child={npz},{out_json}",
             f"--apgd_steps={args.apgd_steps}", f"--square_queries={args.square_queries}", f"--seed={args.seed}"]
    proc = subprocess.run(child, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
      sys.exit(f"peer child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    with open(out_json) as fh:
      peer = json.load(fh)
    for path in (npz, out_json):
      os.remove(path)
    os.rmdir(tmp)
    net = {"grid": list(grid), "logit_max_rel_diff": peer["logit_max_rel_diff"], "versions": {
        "torch": peer["torch"], "torchattacks": peer["torchattacks"]}, "peer_stage_counts": peer[
            "autoattack_stage_counts"], "attacks": {}}
    lines += [f"{name}, {len(x)} test images, L∞, APGD {args.apgd_steps} steps, Square {args.square_queries} "
              "queries; robust accuracy (%):",
              "| attack | who | " + " | ".join(f"ε={e:g}" for e in grid) + " | largest gap (points) |",
              "|---|---|" + "---|" * len(grid) + "---|"]
    for attack, correct in ours.items():
      theirs = np.asarray(peer[attack], bool)
      envelope = np.logical_and.accumulate(theirs, axis=0)
      acc = {"tfrobust": correct.mean(axis=1), "peer": theirs.mean(axis=1), "peer_envelope": envelope.mean(axis=1)}
      gap = {who: float(100 * np.max(np.abs(acc["tfrobust"] - a))) for who, a in acc.items() if who != "tfrobust"}
      net["attacks"][attack] = {**{who: a.tolist() for who, a in acc.items()}, "largest_gap_points": gap,
                                "within_goal": {who: g <= GOAL_POINTS for who, g in gap.items()},
                                "examples_disagreeing_with_envelope": int(np.sum(correct != envelope))}
      for who, a in acc.items():
        lines.append(f"| {attack} | {who} | " + " | ".join(f"{100 * v:.1f}" for v in a) +
                     f" | {gap.get(who, 0.0):.1f} |")
    record["nets"][name] = net
    lines.append("")
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  record["cpu_model"] = bench.cpu_model()
  record["versions"] = io.versions()
  io.write_json(args.output, record)
  print("\n".join(lines) + f"-> {args.output}")


if __name__ == "__main__":
  ARGS = parse_args()
  if ARGS.torch_child:
    torch_child(ARGS)
  else:
    tf_main(ARGS)
