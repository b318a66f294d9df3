"""`python -m tfrobust.report --sweep_dir=DIR`: an entry point only, see tfrobust/cli/report.py."""

if __name__ == "__main__":
  from tfrobust.cli import report
  report.run()
