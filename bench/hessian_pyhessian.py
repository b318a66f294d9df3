"""tfrobust vs PyHessian, side by side on the same weights: top-k Hessian eigenvalues of a trained LeNet's mean
cross-entropy on the same 1,000 mnist5k training images, with the time of each and where tfrobust's goes.

  .venv/bin/python bench/hessian_pyhessian.py [--examples=1000] [--ks=1,3] [--repeats=5] [--weights=W.npz]

The TF process trains LeNet with tfrobust's Trainer (--train_epochs of SGD, batch 128, lr 0.05, momentum 0.9,
seed --seed) or loads --weights (an .npz as this script writes with --npz), takes the Hessian evaluator's subset
(subset_indices, seed 0) and writes weights, images, labels, TF's logits and a probe vector to an .npz. A child
process (TensorFlow and PyTorch in one process segfault here) loads them into the same LeNet in PyTorch
(bench/torch_lenet.py), refuses to go on unless its logits agree with TF's and times PyHessian
(the `pyhessian` package, installed by the `bench` extra) `hessian(model, criterion, data=(x, y), cuda=False)
.eigenvalues(maxIter, tol, top_n=k)`. Both sides use --threads threads (default: all cores), oneDNN on for TF.

tfrobust is timed as a user calls it,
`tfrobust.evaluators.hessian.evaluate.top_eigenvalues(model, dataset, k, examples=N)` (subset, analyzer,
Lanczos): first call (a fresh trace: the function cache is cleared first) and warm (median of --repeats calls;
only k's first call in the process also pays TF's runtime warm-up). Instrumented runs (the same steps by hand)
split the time into subset, analyzer construction, the first HVP (the trace when cold), the later HVPs and
Lanczos's own numpy work, also with numpy's BLAS held to one thread (its threads compete with TF's pool for the
same cores). PyHessian: constructor (forward + backward with create_graph) and eigenvalues (its HVPs timed one by
one), first call and median of --repeats, the same start vector each time.
Relative errors are against tfrobust's Lanczos at --reference_tol; the probe vector checks that both Hessians
agree (H v in TF and in torch).
Writes --output (JSON) and prints Markdown tables.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))
sys.path.insert(0, BENCH)

BATCH = 512  # tfrobust's default HVP batch (HessianConfig.batch_size): 1,000 images = 2 batches
TRAIN_BATCH, TRAIN_LR, TRAIN_MOMENTUM = 128, 0.05, 0.9
LOGIT_TOL = 1e-4  # max |logit_tf - logit_torch| / max(1, max |logit|)
HVP_TOL = 1e-3  # ||Hv_tf - Hv_torch|| / ||Hv_tf|| for the probe vector (float32, different summation orders)


def parse_args():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--examples", type=int, default=1000, help="training images the Hessian is taken on")
  p.add_argument("--ks", default="1,3", help="top-k values to time, comma-separated")
  p.add_argument("--tol", type=float, default=1e-3)
  p.add_argument("--max_iter", type=int, default=100)
  p.add_argument("--reference_tol", type=float, default=1e-8)
  p.add_argument("--reference_max_iter", type=int, default=300)
  p.add_argument("--repeats", type=int, default=5, help="timed calls per warm median")
  p.add_argument("--train_epochs", type=int, default=3)
  p.add_argument("--seed", type=int, default=0, help="training seed and PyHessian's torch seed")
  p.add_argument("--weights", default=None, help=".npz with w0, w1, ... (as --npz writes): skip training")
  p.add_argument("--npz", default=None, help="keep the exchange .npz here (default: a deleted temporary)")
  p.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads for TF and torch")
  p.add_argument("--output", default=os.path.join(BENCH, "results", "hessian_pyhessian.json"))
  p.add_argument("--torch_child", default=None, help=argparse.SUPPRESS)  # internal: NPZ,OUT_JSON
  return p.parse_args()


# ----------------------------------------------------------------------------------------- PyTorch (child)


def torch_child(args):
  """Runs in the child process: PyTorch only. Checks logits and the probe product, then times PyHessian."""
  npz_path, out_path = args.torch_child.split(",")
  import warnings  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  # PyHessian's constructor calls backward(create_graph=True), which torch warns about on every call.
  warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
  torch.set_num_threads(args.threads)
  torch.set_num_interop_threads(args.threads)
  import importlib  # pylint: disable=import-outside-toplevel
  # PyHessian from PyPI (the bench extra); its eigenvalues() path is the GitHub code's. The module, not the
  # class of the same name that pyhessian/__init__.py exports, so that its HVP function can be timed.
  ph = importlib.import_module("pyhessian.hessian")
  import torch_lenet  # pylint: disable=import-outside-toplevel

  f = np.load(npz_path)
  input_shape = tuple(int(s) for s in f["input_shape"])
  weights = [f[f"w{i}"] for i in range(int(f["num_weights"]))]
  model = torch_lenet.lenet(input_shape)
  torch_lenet.load_keras_weights(model, weights, input_shape)
  model.eval()
  x = torch.from_numpy(np.ascontiguousarray(f["x"].transpose(0, 3, 1, 2)))
  y = torch.from_numpy(f["y"].astype(np.int64))
  criterion = torch.nn.CrossEntropyLoss()

  with torch.no_grad():
    logits = model(x).numpy()
    loss = float(criterion(model(x), y))
  tf_logits = f["logits"]
  logit_err = float(np.max(np.abs(logits - tf_logits)) / max(1.0, float(np.max(np.abs(tf_logits)))))
  out = {"logit_max_rel_diff": logit_err, "loss": loss, "torch": torch.__version__,
         "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads()}
  if not logit_err <= LOGIT_TOL:
    out["error"] = (f"PyTorch's logits differ from TensorFlow's: max |diff| / max(1, max |logit|) = "
                    f"{logit_err:.2e} > {LOGIT_TOL:g} (weight layout?)")
    _write(out_path, out)
    sys.exit(out["error"])

  # H v for the probe vector, back in Keras's flat order: both sides differentiate the same function.
  sizes = [w.size for w in weights]
  probe = np.split(f["probe"], np.cumsum(sizes)[:-1])
  probe_t = [torch.from_numpy(a) for a in torch_lenet.keras_to_torch(
      [p.reshape(w.shape) for p, w in zip(probe, weights)], input_shape)]
  h = ph.hessian(model, criterion, data=(x, y), cuda=False)
  hv = ph.hessian_vector_product(h.gradsH, h.params, probe_t)
  out["probe_hv"] = np.concatenate(
      [a.ravel() for a in torch_lenet.torch_to_keras([t.numpy() for t in hv], input_shape)]).tolist()
  model.zero_grad()
  del h, hv

  # PyHessian as its README calls it; its module-level product wrapped to count and time the HVPs.
  hvp_times = []
  product = ph.hessian_vector_product

  def timed(*a, **kw):
    t0 = time.perf_counter()
    result = product(*a, **kw)
    hvp_times.append(time.perf_counter() - t0)
    return result
  ph.hessian_vector_product = timed

  out["runs"] = []
  for k in args.ks:
    for r in range(args.repeats + 1):
      torch.manual_seed(args.seed)  # the same start vector every time: the repeats differ in time only
      hvp_times.clear()
      t0 = time.perf_counter()
      h = ph.hessian(model, criterion, data=(x, y), cuda=False)
      t1 = time.perf_counter()
      values, _ = h.eigenvalues(maxIter=args.max_iter, tol=args.tol, top_n=k)
      t2 = time.perf_counter()
      out["runs"].append({"k": k, "repeat": r, "construct_s": t1 - t0, "eigenvalues_s": t2 - t1,
                          "total_s": t2 - t0, "hvps": len(hvp_times), "hvps_s": float(np.sum(hvp_times)),
                          "hvp_median_s": float(np.median(hvp_times)), "eigenvalues": [float(v) for v in values]})
      model.zero_grad()
      del h
  _write(out_path, out)


def _write(path, obj):
  with open(path, "w") as fh:
    json.dump(obj, fh)


# ------------------------------------------------------------------------------------------ TensorFlow


def tf_main(args):
  """Trains (or loads) LeNet, times tfrobust, runs the PyTorch child, writes JSON and the tables."""
  from tfrobust import onednn  # pylint: disable=import-outside-toplevel
  onednn_state = onednn.configure("lenet")  # before TensorFlow loads
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.config.threading.set_intra_op_parallelism_threads(args.threads)
  tf.config.threading.set_inter_op_parallelism_threads(args.threads)
  from tfrobust import data, io  # pylint: disable=import-outside-toplevel
  from tfrobust.evaluators.hessian import analyzer  # pylint: disable=import-outside-toplevel
  from tfrobust.evaluators.hessian import evaluate as hessian_eval  # pylint: disable=import-outside-toplevel

  ds = data.load_mnist5k()
  model, train_info = _trained_lenet(args, ds)
  n = min(args.examples, len(ds.x_train))
  idx = hessian_eval.subset_indices(len(ds.x_train), n, 0)
  x, y = ds.x_train[idx], ds.y_train[idx]
  logits = model(x, training=False).numpy()
  probe = np.random.default_rng(12345).standard_normal(analyzer.count_params(model)).astype(np.float32)

  tf_rows, tf_info = _time_tfrobust(args, ds, model, n, probe)
  npz = args.npz or os.path.join(tempfile.mkdtemp(prefix="hessian_pyhessian_"), "exchange.npz")
  weights = [np.asarray(v) for v in model.trainable_variables]
  np.savez(npz, x=x, y=y, logits=logits, probe=probe, input_shape=np.array(ds.input_shape),
           num_weights=len(weights), **{f"w{i}": w for i, w in enumerate(weights)})
  torch_out = _run_child(args, npz)
  if not args.npz:
    os.remove(npz)
    os.rmdir(os.path.dirname(npz))

  probe_err = float(np.linalg.norm(np.asarray(torch_out.pop("probe_hv")) - tf_info["probe_hv"]) /
                    np.linalg.norm(tf_info["probe_hv"]))
  tf_info.pop("probe_hv")
  if not probe_err <= HVP_TOL:
    sys.exit(f"H v differs between TF and torch: relative {probe_err:.2e} > {HVP_TOL:g}")
  ref = tf_info["reference"]["eigenvalues"]
  rows = tf_rows + _pyhessian_rows(args, torch_out)
  for r in rows:
    k = r["k"]
    r["relative_errors"] = [abs(a - b) / abs(b) for a, b in zip(sorted(r["eigenvalues"], reverse=True), ref[:k])]
  for r in rows:
    if r["method"] == "tfrobust":
      p = next(q for q in rows if q["method"] == "pyhessian" and q["k"] == r["k"])
      r["over_pyhessian_warm"] = r["warm_s"] / p["warm_s"]
      r["over_pyhessian_first"] = r["first_s"] / p["first_s"]
  out = {"benchmark": "hessian_pyhessian", "model": "lenet", "dataset": "mnist5k", "examples": n,
         "hvp_batch_size": BATCH, "tol": args.tol, "max_iter": args.max_iter, "repeats": args.repeats,
         "threads": {"tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                     "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
                     "torch": torch_out.pop("threads"), "torch_interop": torch_out.pop("interop_threads")},
         "train": train_info, "rows": rows, "tfrobust": tf_info,
         "pyhessian": {k: v for k, v in torch_out.items() if k != "runs"},
         "pyhessian_runs": torch_out["runs"], "probe_hv_relative_diff": probe_err,
         "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
         "versions": dict(io.versions(), torch=torch_out["torch"], **onednn_state)}
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  io.write_json(args.output, out)
  _print_tables(out)
  print(f"\nJSON: {args.output}")


def _trained_lenet(args, ds):
  """LeNet trained by tfrobust's Trainer, or with --weights; a plain Keras model either way."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tfrobust import data, distribute, models  # pylint: disable=import-outside-toplevel
  from tfrobust.train.step import Trainer  # pylint: disable=import-outside-toplevel

  def build():
    return models.build_model("lenet", ds.input_shape, ds.num_classes, seed=args.seed)
  if args.weights:
    f = np.load(args.weights)
    weights = [f[f"w{i}"] for i in range(int(f["num_weights"]))]
    info = {"weights": os.path.abspath(args.weights)}
  else:
    steps_per_call = 16
    trainer = Trainer(build, distribute.make_strategy(), global_batch_size=TRAIN_BATCH,
                      steps_per_call=steps_per_call)
    it = iter(data.training_stream(ds.x_train, ds.y_train, TRAIN_BATCH, seed=args.seed, epochs=args.train_epochs))
    total, step = len(ds.x_train) // TRAIN_BATCH * args.train_epochs, 0
    t0 = time.perf_counter()
    while step < total:
      num = min(steps_per_call, total - step)
      trainer.run_steps(it, [TRAIN_LR] * steps_per_call, num, momentum=TRAIN_MOMENTUM, weight_decay=0.0,
                        nesterov=False)
      step += num
    loss, acc = trainer.loss_and_accuracy(ds.x_train, ds.y_train, 512)
    info = {"epochs": args.train_epochs, "steps": total, "batch_size": TRAIN_BATCH, "lr": TRAIN_LR,
            "momentum": TRAIN_MOMENTUM, "seed": args.seed, "seconds": time.perf_counter() - t0,
            "train_loss": loss, "train_accuracy": acc}
    weights = [np.asarray(v) for v in trainer.model.trainable_variables]
  model = build()
  for v, w in zip(model.trainable_variables, weights, strict=True):
    v.assign(tf.constant(w))
  return model, info


class _TimedHvp:
  """Wraps an analyzer's hvp to record each product's wall time (the rest of a solve is Lanczos's own)."""

  def __init__(self, analyzer):
    self.fn, self.times = analyzer.hvp, []
    analyzer.hvp = self

  def __call__(self, v):
    t0 = time.perf_counter()
    out = self.fn(v)
    self.times.append(time.perf_counter() - t0)
    return out


def _instrumented(args, ds, model, n, k, seed=0):
  """top_eigenvalues(model, ds, k, examples=n) by hand, each part timed (the same steps, the same result)."""
  from tfrobust.evaluators.hessian import analyzer  # pylint: disable=import-outside-toplevel
  from tfrobust.evaluators.hessian import evaluate as hessian_eval  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  idx = hessian_eval.subset_indices(len(ds.x_train), n, seed)
  x, y = ds.x_train[idx], ds.y_train[idx]
  t1 = time.perf_counter()
  a = analyzer.HessianAnalyzer(model, x, y, batch_size=BATCH)
  t2 = time.perf_counter()
  timed = _TimedHvp(a)
  r = a.top_eigenvalues(k, method="lanczos", max_iter=args.max_iter, tol=args.tol, seed=seed)
  t3 = time.perf_counter()
  hv = timed.times
  return {"subset_s": t1 - t0, "analyzer_s": t2 - t1, "first_hvp_s": hv[0], "later_hvps": len(hv) - 1,
          "later_hvp_median_s": float(np.median(hv[1:])) if len(hv) > 1 else None,
          "later_hvps_s": float(np.sum(hv[1:])), "lanczos_own_s": (t3 - t2) - float(np.sum(hv)),
          "total_s": t3 - t0, "hvps": len(hv), "eigenvalues": r.eigenvalues, "converged": r.converged}


def _median_breakdown(runs):
  """Field-wise median of instrumented runs (the eigenvalues of the last)."""
  out = dict(runs[-1])
  for key, value in out.items():
    if isinstance(value, float) and all(r[key] is not None for r in runs):
      out[key] = float(np.median([r[key] for r in runs]))
  out["runs"] = len(runs)
  return out


def _time_tfrobust(args, ds, model, n, probe):
  """tfrobust's rows (first call, warm median, instrumented breakdowns) and per-product timings."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tfrobust.evaluators.hessian import analyzer  # pylint: disable=import-outside-toplevel
  from tfrobust.evaluators.hessian import evaluate as hessian_eval  # pylint: disable=import-outside-toplevel
  from tfrobust.evaluators.hessian import hvp as hvp_lib  # pylint: disable=import-outside-toplevel
  from timing import median_seconds  # pylint: disable=import-outside-toplevel
  try:
    from threadpoolctl import threadpool_limits  # pylint: disable=import-outside-toplevel (scikit-learn's)
  except ImportError:
    threadpool_limits = None

  def call(k):
    return hessian_eval.top_eigenvalues(model, ds, k, examples=n, method="lanczos", max_iter=args.max_iter,
                                        tol=args.tol, batch_size=BATCH)
  rows = []
  for k in args.ks:
    hvp_lib.clear_cache()  # A fresh trace, as for the first model of an architecture in a process.
    first = _instrumented(args, ds, model, n, k)
    result = call(k)
    warm_s = median_seconds(lambda k=k: call(k), args.repeats)
    warm = _median_breakdown([_instrumented(args, ds, model, n, k) for _ in range(args.repeats)])
    row = {"method": "tfrobust", "solver": "lanczos", "k": k, "first_s": first["total_s"], "warm_s": warm_s,
           "hvps": result.products, "eigenvalues": result.eigenvalues, "converged": result.converged,
           "breakdown_first": first, "breakdown_warm": warm}
    if threadpool_limits is not None:  # numpy's BLAS threads vs TF's pool on the same cores: Lanczos's share
      with threadpool_limits(1, user_api="blas"):
        row["breakdown_warm_blas1"] = _median_breakdown(
            [_instrumented(args, ds, model, n, k) for _ in range(args.repeats)])
    rows.append(row)

  # One product, taken apart: the compiled call alone vs the Python around it (weights, vector, float64).
  idx = hessian_eval.subset_indices(len(ds.x_train), n, 0)
  a = analyzer.HessianAnalyzer(model, ds.x_train[idx], ds.y_train[idx], batch_size=BATCH)
  fns, batches = a._fns, a._data  # pylint: disable=protected-access
  fn = fns.product("hvp_" + a.hvp_mode, a.num_params)
  values = fns.values(model)
  v_tf = tf.constant(probe.astype(np.float32))
  info = {
      "num_params": a.num_params, "hvp_mode": a.hvp_mode,
      "structure_key_s": median_seconds(lambda: hvp_lib.structure_key(model), args.repeats),
      "analyzer_s": median_seconds(lambda: analyzer.HessianAnalyzer(model, ds.x_train[idx], ds.y_train[idx],
                                                                   batch_size=BATCH), args.repeats),
      "hvp_s": median_seconds(lambda: a.hvp(probe), args.repeats),
      "hvp_compiled_call_s": median_seconds(lambda: fn(*values, v_tf, batches).numpy(), args.repeats),
      "weights_to_tensors_s": median_seconds(lambda: fns.values(model), args.repeats),
      "gradient_s": median_seconds(a.loss_and_gradient, args.repeats),
      "loss": a.loss_and_gradient()[0],
      "tracing_count": a.tracing_count,
      "probe_hv": a.hvp(probe),
  }
  info["hvp_over_gradient"] = info["hvp_s"] / info["gradient_s"]
  t0 = time.perf_counter()
  ref = a.top_eigenvalues(max(args.ks), method="lanczos", max_iter=args.reference_max_iter,
                          tol=args.reference_tol, seed=1)
  info["reference"] = {"eigenvalues": ref.eigenvalues, "converged": ref.converged, "products": ref.products,
                       "residuals": ref.residuals, "tol": args.reference_tol, "seconds": time.perf_counter() - t0}
  return rows, info


def _run_child(args, npz):
  """The PyTorch side, in its own process; its JSON result."""
  out_json = npz + ".torch.json"
  cmd = [sys.executable, os.path.abspath(__file__), f"--torch_child={npz},{out_json}", f"--ks={args.ks_text}",
         f"--tol={args.tol}", f"--max_iter={args.max_iter}", f"--repeats={args.repeats}", f"--seed={args.seed}",
         f"--threads={args.threads}"]
  proc = subprocess.run(cmd, check=False)
  if proc.returncode != 0:
    sys.exit(f"the PyTorch child failed (exit {proc.returncode}); see its message above")
  with open(out_json) as fh:
    out = json.load(fh)
  os.remove(out_json)
  return out


def _pyhessian_rows(args, torch_out):
  rows = []
  for k in args.ks:
    runs = [r for r in torch_out["runs"] if r["k"] == k]
    first, warm = runs[0], runs[1:] or runs
    med = lambda key, warm=warm: float(np.median([r[key] for r in warm]))  # noqa: E731
    rows.append({"method": "pyhessian", "solver": "power", "k": k, "first_s": first["total_s"],
                 "warm_s": med("total_s"), "hvps": warm[-1]["hvps"], "eigenvalues": warm[-1]["eigenvalues"],
                 "converged": None,
                 "breakdown_warm": _pyhessian_breakdown(warm), "breakdown_first": _pyhessian_breakdown([first])})
  return rows


def _pyhessian_breakdown(runs):
  """Medians over runs: constructor, eigenvalues, its HVPs and the rest (PyHessian's own vector work)."""
  med = lambda f: float(np.median([f(r) for r in runs]))  # noqa: E731
  return {"construct_s": med(lambda r: r["construct_s"]), "eigenvalues_s": med(lambda r: r["eigenvalues_s"]),
          "hvps_s": med(lambda r: r["hvps_s"]), "hvp_median_s": med(lambda r: r["hvp_median_s"]),
          "own_s": med(lambda r: r["eigenvalues_s"] - r["hvps_s"])}


def _print_tables(out):
  ref = out["tfrobust"]["reference"]
  print(f"\nLeNet, {out['examples']} mnist5k training images, tol {out['tol']}, threads "
        f"{out['threads']['tf_intra_op']} (TF) / {out['threads']['torch']} (torch); reference λ "
        f"{', '.join(f'{v:.6g}' for v in ref['eigenvalues'])} (Lanczos tol {ref['tol']:g}, "
        f"{ref['products']} HVPs{'' if ref['converged'] else ', NOT converged'})\n")
  print("| method | k | first call s | warm s | HVPs | eigenvalues | rel. errors | "
        "tfrobust / PyHessian (warm, first) |")
  print("|" + "---|" * 8)
  for r in sorted(out["rows"], key=lambda r: (r["k"], r["method"] != "tfrobust")):
    ratio = (f"{r['over_pyhessian_warm']:.2f}, {r['over_pyhessian_first']:.2f}" if "over_pyhessian_warm" in r
             else "")
    name = "tfrobust (Lanczos)" if r["method"] == "tfrobust" else "PyHessian (power)"
    print(f"| {name} | {r['k']} | {r['first_s']:.3f} | {r['warm_s']:.3f} | {r['hvps']} | "
          f"{', '.join(f'{v:.5g}' for v in r['eigenvalues'])} | "
          f"{', '.join(f'{e:.1e}' for e in r['relative_errors'])} | {ratio} |")

  print("\ntfrobust, where the time goes (seconds; first: one instrumented call after clearing the function "
        "cache; warm: medians of --repeats instrumented calls; BLAS 1: the same with numpy's BLAS on 1 thread):\n")
  print("| k | call | subset | analyzer | first HVP | later HVPs (n × median) | Lanczos own | total |")
  print("|" + "---|" * 8)
  for r in out["rows"]:
    if r["method"] != "tfrobust":
      continue
    for label in ("first", "warm", "warm_blas1"):
      b = r.get(f"breakdown_{label}")
      if b is None:
        continue
      later = (f"{b['later_hvps_s']:.3f} ({b['later_hvps']} × {b['later_hvp_median_s']:.3f})"
               if b["later_hvps"] else "0")
      print(f"| {r['k']} | {label.replace('_blas1', ', BLAS 1')} | {b['subset_s']:.4f} | {b['analyzer_s']:.4f} | "
            f"{b['first_hvp_s']:.3f} | {later} | {b['lanczos_own_s']:.4f} | {b['total_s']:.3f} |")
  t, p = out["tfrobust"], out["pyhessian"]
  print(f"\nOne product (median s): tfrobust HVP {t['hvp_s']:.4f} (compiled call alone {t['hvp_compiled_call_s']:.4f}, "
        f"weights to tensors {t['weights_to_tensors_s']:.5f}), gradient {t['gradient_s']:.4f} "
        f"(HVP/gradient {t['hvp_over_gradient']:.2f}); analyzer construction {t['analyzer_s']:.4f} "
        f"(structure key {t['structure_key_s']:.4f}). A PyHessian HVP is one backward through the gradient "
        f"graph its constructor keeps; a tfrobust HVP recomputes forward and gradient each time.")
  print("PyHessian, warm (median s): " + "; ".join(
      f"k={r['k']}: constructor {b['construct_s']:.3f} (forward + create_graph backward), eigenvalues "
      f"{b['eigenvalues_s']:.3f} = {r['hvps']} HVPs {b['hvps_s']:.3f} (median {b['hvp_median_s']:.4f}) + own "
      f"work {b['own_s']:.3f}" for r in out["rows"] if r["method"] == "pyhessian"
      for b in [r["breakdown_warm"]]))
  print(f"Checks: logits max rel. diff {p['logit_max_rel_diff']:.1e}, loss TF {t['loss']:.6f} / torch "
        f"{p['loss']:.6f}, probe H v rel. diff {out['probe_hv_relative_diff']:.1e}.")


def main():
  args = parse_args()
  args.ks_text = args.ks
  args.ks = [int(k) for k in args.ks.split(",")]
  if args.torch_child:
    torch_child(args)
  else:
    tf_main(args)


if __name__ == "__main__":
  main()
