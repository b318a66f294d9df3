"""`python -m tfrobust.calibrate`: see tfrobust/cli/calibrate.py (flags, what it writes)."""

if __name__ == "__main__":
  from tfrobust.cli import calibrate
  calibrate.run()
