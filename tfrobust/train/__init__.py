"""Training: the SGD rule (sgd.py), what one compiled step does (step.py), how steps are driven — epochs,
checkpoints, resume, summaries (driver.py) — and one run end to end, data to result.json (run.py)."""
