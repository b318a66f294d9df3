"""The study report: `python -m tfrobust.report --sweep_dir=DIR [--acc_margin=POINTS] [--eig_margin=LOG2]`.

Reads DIR/results.jsonl (and sweep.json) and writes DIR/report/ (tfrobust.report.build). No TensorFlow: the
report runs anywhere in a few seconds. Bad input: one line on stderr, exit status 2, nothing written.
"""

import sys

from absl import flags

from tfrobust.errors import UsageError
from tfrobust.report import claims
from tfrobust.report.build import write_report

_USAGE = "usage: python -m tfrobust.report --sweep_dir=DIR [--acc_margin=POINTS] [--eig_margin=LOG2]"


def main(argv=None):
  """Returns the exit status: 0 written, 2 bad input."""
  fv = flags.FlagValues()  # private: a study that imports this module defines no flags
  flags.DEFINE_string("sweep_dir", None, "Sweep directory holding results.jsonl (and sweep.json).", flag_values=fv)
  flags.DEFINE_float("acc_margin", claims.ACC_MARGIN, "Practical margin for accuracy slopes, in accuracy points "
                     "per doubling of B (> 0).", flag_values=fv)
  flags.DEFINE_float("eig_margin", claims.EIG_MARGIN, "Practical margin for the log2 λ_max slope, per doubling of "
                     "B (> 0).", flag_values=fv)
  argv = sys.argv if argv is None else argv
  try:
    if any(a in ("-h", "--help", "--helpfull") for a in argv[1:]):
      print(f"{_USAGE}\n{fv.get_help()}")
      return 0
    rest = fv(argv)[1:]
    if rest:
      raise UsageError(f"{rest[0]}: unexpected argument ({_USAGE})")
    if not fv.sweep_dir:
      raise UsageError("--sweep_dir: required (the sweep directory that holds results.jsonl)")
    claims.check_margin(fv.acc_margin, "--acc_margin")
    claims.check_margin(fv.eig_margin, "--eig_margin")
    path = write_report(fv.sweep_dir, acc_margin=fv.acc_margin, eig_margin=fv.eig_margin)
  except (UsageError, flags.Error) as e:
    print(f"error: {(str(e).splitlines() or ['?'])[0]}", file=sys.stderr)
    return 2
  print(f"report: {path}")
  return 0


def run():
  sys.exit(main())
