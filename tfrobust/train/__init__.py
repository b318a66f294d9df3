"""Training only: the SGD rule (sgd.py), what one compiled step does (step.py), and how steps are driven — epochs,
checkpoints, resume, summaries (driver.py). A whole run, with its evaluators and files, is tfrobust.experiment."""
