"""Every flag file under flags/ parses with the entry point it names and makes a valid configuration; every
CIFAR or SVHN one augments its training images (their paper settings all do)."""

import glob
import os
import subprocess
import sys

from conftest import ROOT

CHECK = r'''
import sys
from absl import flags
from tfrobust.cli import sweep  # the flags of a study: those of a run (tfrobust.main's) and the grid's
from tfrobust.cli import flags as experiment_flags
from tfrobust.cli.flags import study as study_flags
FLAGS = flags.FLAGS
for path in sys.argv[1:]:
  FLAGS.unparse_flags()
  FLAGS(["prog", "--flagfile=" + path])
  experiment = experiment_flags.experiment_from_flags(FLAGS)
  experiment.train.validate()
  for section in experiment.evaluators.values():
    section.validate()
  if "_study" in path or "_paper" in path or "_yao" in path:
    grid = study_flags.grid_from_flags().validate()
    print(path, "grid", len(grid.points()), "points", flush=True)
  else:
    print(path, "run", experiment.train.model, flush=True)
  print(path, "data", experiment.train.dataset, "augment", experiment.train.augment, flush=True)
'''


def test_flag_files_parse_and_validate():
  files = sorted(glob.glob(os.path.join(ROOT, "flags", "*.cfg")))
  assert len(files) >= 6
  proc = subprocess.run([sys.executable, "-c", CHECK, *[os.path.relpath(f, ROOT) for f in files]], cwd=ROOT,
                        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  lines = proc.stdout.strip().splitlines()
  assert len(lines) == 2 * len(files)
  assert "flags/digits_study.cfg grid 60 points" in lines
  augment = {path: (data, aug) for path, _, data, _, aug in (line.split() for line in lines if " data " in line)}
  assert len(augment) == len(files)
  colour = {path: aug for path, (data, aug) in augment.items() if data.startswith(("cifar", "svhn"))}
  assert len(colour) >= 3 and all(aug != "none" for aug in colour.values()), colour
  assert augment["flags/cifar10_resnet20_paper.cfg"] == ("cifar10", "crop_flip")
  assert augment["flags/cifar10_vgg11_paper.cfg"] == ("cifar10", "crop_flip")  # inherited through --flagfile
  assert augment["flags/mnist_lenet_paper.cfg"] == ("mnist", "none")
