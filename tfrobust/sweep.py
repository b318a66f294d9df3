"""`python -m tfrobust.sweep`: see tfrobust/cli/sweep.py (flags, what it writes)."""

if __name__ == "__main__":
  from tfrobust.cli import sweep
  sweep.run()
