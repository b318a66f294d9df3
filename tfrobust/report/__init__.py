"""The study report, pure Python (no TensorFlow): results.jsonl → trial classes → per-seed effects → verdicts on
claims C1–C3 → verdicts.json, report.md, report.html, summary.md and figures.

  data.py        results.jsonl lines as Trials, sweep.json, which adversarial accuracy the claims compare
  quality.py     usable / doubtful / collapsed / diverged / failed, and trained or not
  effects.py     per-seed effects (slopes over log2 B, momentum differences) under three controls
  stats.py       Student-t intervals over seeds (the verdicts: paired.py)
  claims.py      what C1–C3 state, their components, and the rules that decide them
  verdicts.py    every component judged on every control: the rows of verdicts.json
  breakdown.py   where a regime stops training, in words
  figures.py     every plot;  document.py  the report as blocks;  render.py  Markdown and HTML
  build.py       write_report(sweep_dir): all of the above, written atomically
  readme_results.py   keeps README.md's quoted results equal to docs/results/*/summary.md
`python -m tfrobust.report` runs __main__.py (the command line is tfrobust/cli/report.py).
"""
