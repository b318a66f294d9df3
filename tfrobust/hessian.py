"""`python -m tfrobust.hessian`: see tfrobust/cli/evaluate.py (evaluators on a SavedModel, flags, what it writes)."""

if __name__ == "__main__":
  from tfrobust.cli import evaluate
  evaluate.run("hessian")
