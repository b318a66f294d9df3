"""The study: a grid of training runs (regimes × batch sizes × momenta × seeds) run, resumed and distributed.

  grid.py     the Grid (the study's frozen config) and its GridPoints, the regimes and budgets
  tuner.py    the keras-tuner adapter: search space, oracle, tuner
  runner.py   run_study(): every point through tfrobust.experiment.run, appended to results.jsonl
"""
