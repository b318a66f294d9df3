"""tfrobust: how SGD hyperparameters of natural training shape accuracy, robustness and curvature.

The folders are the architecture (data flows down the list):
  config.py, errors.py, io.py, losses.py   frozen run configs; UsageError; atomic file writes; cross-entropy
  data.py, models.py, distribute.py, export.py, onednn.py
  train/        SGD rule, compiled steps, the driver (checkpoints, resume), one run end to end
  evaluators/   the registry; robustness/ (attacks, checks) and hessian/ (HVPs, eigen-solvers)
  study/        the grid, keras-tuner, results.jsonl
  report/       verdicts on claims C1–C3, figures, report.md/html (no TensorFlow)
  cli/          every flag and entry point; main.py, sweep.py, evaluate.py, hessian.py here are `python -m` shims
  ops/          the fused PGD step (C++/CUDA custom op and its pure-TF fallback)
"""

__version__ = "0.1.0"
