"""`python -m tfrobust.evaluate`: see tfrobust/cli/evaluate.py (evaluators on a SavedModel, flags, what it writes)."""

if __name__ == "__main__":
  from tfrobust.cli import evaluate
  evaluate.run("evaluate")
