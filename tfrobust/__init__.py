"""tfrobust: how SGD hyperparameters of natural training shape accuracy, robustness and curvature."""

__version__ = "0.1.0"
