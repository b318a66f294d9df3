"""`python -m tfrobust.readme_results`: see tfrobust/cli/readme_results.py (README's study tables from the reports)."""

if __name__ == "__main__":
  from tfrobust.cli import readme_results
  readme_results.run()
