"""The robustness evaluator: adversarial accuracy under FGSM and PGD (L∞, L2) along a grid of ε.

  config.py     RobustnessConfig, the default ε grids, the attack and norm names (TF-free)
  attacks.py    the maths: losses, seeded random starts, FGSM, the PGD loop, the worst case over restarts
  runner.py     the attacks compiled per model, batched, split over replicas, cached
  checks.py     the sanity checks of its own numbers
  evaluate.py   measure() on arrays, evaluate() on a dataset: the Evaluation (section, curves, figure, examples)
"""
