"""`python -m tfrobust.main`: see tfrobust/cli/main.py (flags, what it writes)."""

if __name__ == "__main__":
  from tfrobust.cli import main
  main.run()
