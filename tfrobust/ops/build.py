"""Compiles the fused PGD step op into tfrobust/ops/_pgd_step_ops.so. Never raises: returns None and says why.

Standard library only (TensorFlow is imported by build() alone), so that the CUDA check runs on a GPU machine
without TensorFlow. The command line is tfrobust/cli/build_ops.py:

  python -m tfrobust.build_ops                # CPU kernel, in place (what setup.py and `make ops` call)
  python -m tfrobust.build_ops --cuda         # also the CUDA kernel (needs nvcc and tensorflow[and-cuda])
  python -m tfrobust.build_ops --cuda_check   # compile the standalone CUDA harness with nvcc
  python -m tfrobust.build_ops --cuda_check --run_harness   # ... and run it (on a GPU machine; absl-py only)

Extra g++ flags come from TFROBUST_OPS_CXXFLAGS (e.g. -march=native; the default builds for any x86-64).
The CUDA kernel is opt-in (--cuda or TFROBUST_BUILD_CUDA=1): the TensorFlow pip wheel for CPU has no GPU
device, so a GPU kernel registered into it is never used. The harness needs no TensorFlow at all.
"""

import logging
import os
import shutil
import subprocess
import sys
import tempfile

OPS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(OPS_DIR))  # the include root: sources say "tfrobust/ops/cc/..."
CC_DIR = os.path.join(OPS_DIR, "cc")
OP_SOURCE = os.path.join(CC_DIR, "pgd_step_op.cc")
KERNEL_HEADER = os.path.join(CC_DIR, "pgd_step_kernel.h")
CUDA_SOURCE = os.path.join(CC_DIR, "pgd_step_kernel.cu.cc")
HARNESS_SOURCE = os.path.join(CC_DIR, "harness.cu")
LIBRARY = os.path.join(OPS_DIR, "_pgd_step_ops.so")
HARNESS = os.path.join(ROOT, "build", "pgd_step_harness")
CUDA_ENV = "TFROBUST_BUILD_CUDA"
# Extra g++ flags, e.g. "-march=native" (AVX2 for the L∞ loop) when the library never leaves this machine.
CXXFLAGS_ENV = "TFROBUST_OPS_CXXFLAGS"
# Ampere and Hopper machine code plus Hopper PTX for anything newer; override with TFROBUST_CUDA_ARCHS="80;90".
DEFAULT_CUDA_ARCHS = "80;90"
# TensorFlow's own headers trigger these by the hundred; they say nothing about this op.
QUIET = ["-Wno-deprecated-declarations", "-Wno-interference-size", "-Wno-unknown-warning-option"]


def build(verbose=True, *, output=None, cuda=None, force=False):
  """Compiles the op library; returns its path, or None (and logs why) when it cannot be built.

  output: where the .so goes (default tfrobust/ops/_pgd_step_ops.so, where tfrobust.ops looks).
  cuda: also compile and register the CUDA kernel (default: env TFROBUST_BUILD_CUDA=1).
  force: rebuild even when the library is newer than its sources and TensorFlow.
  """
  output = output or LIBRARY
  if cuda is None:
    cuda = os.environ.get(CUDA_ENV, "0") not in ("", "0")
  cxx = os.environ.get("CXX", "g++")
  if shutil.which(cxx) is None:
    return _give_up(f"no C++ compiler ({cxx} not on PATH)")
  try:
    import tensorflow as tf
  except ImportError as e:
    return _give_up(f"TensorFlow is not importable ({e})")
  compile_flags, link_flags = tf.sysconfig.get_compile_flags(), tf.sysconfig.get_link_flags()
  framework = os.path.join(tf.sysconfig.get_lib(), "libtensorflow_framework.so.2")
  nvcc = shutil.which("nvcc") if cuda else None
  if cuda and nvcc is None:
    _say(verbose, "nvcc not found: building the CPU kernel only")
    cuda = False
  inputs = [OP_SOURCE, KERNEL_HEADER, framework, os.path.abspath(__file__)] + ([CUDA_SOURCE] if cuda else [])
  if not force and _up_to_date(output, inputs) and not cuda:
    _say(verbose, f"{output} is up to date")
    return output

  with tempfile.TemporaryDirectory() as tmp:
    objects, defines, cuda_link = [], [], []
    if cuda:
      kernel_obj = os.path.join(tmp, "pgd_step_kernel.cu.o")
      if not _run([nvcc, "-std=c++17", "-O2", "-Xcompiler", "-fPIC", *_gencode(), "-I", ROOT, "-x", "cu",
                   "-c", CUDA_SOURCE, "-o", kernel_obj], verbose):
        return _give_up("nvcc failed on the CUDA kernel (see the output above)")
      cuda_home = cuda_home_of(nvcc)
      if cuda_home is None:
        return _give_up(f"cannot find cuda_runtime.h next to {nvcc} (set CUDA_HOME)")
      objects = [kernel_obj]
      defines = ["-DGOOGLE_CUDA=1", "-I", os.path.join(cuda_home, "include")]
      lib_dir = os.path.join(cuda_home, "lib64")
      cuda_link = [f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}", "-lcudart"]
    partial = os.path.join(tmp, os.path.basename(output))
    extra = os.environ.get(CXXFLAGS_ENV, "").split()
    cmd = [cxx, "-std=c++17", "-shared", "-fPIC", "-O3", *QUIET, *extra, *defines, "-I", ROOT, *compile_flags,
           OP_SOURCE, *objects, "-o", partial, *link_flags, *cuda_link]
    if not _run(cmd, verbose):
      return _give_up(f"{cxx} failed on {OP_SOURCE} (see the output above)")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    shutil.copyfile(partial, output + ".tmp")
    os.replace(output + ".tmp", output)  # a process loading it never sees half a file
  _say(verbose, f"built {output}" + (" with the CUDA kernel" if cuda else ""))
  return output


def cuda_check(verbose=True, *, output=HARNESS, run=False):
  """Compiles harness.cu with the CUDA kernel (no TensorFlow); runs it when `run`. Returns the binary or None."""
  nvcc = shutil.which("nvcc")
  if nvcc is None:
    return _give_up("nvcc is not on PATH: the CUDA kernel cannot be compiled here")
  os.makedirs(os.path.dirname(output), exist_ok=True)
  cmd = [nvcc, "-std=c++17", "-O2", *_gencode(), "-I", ROOT, "-x", "cu", HARNESS_SOURCE, CUDA_SOURCE,
         "-o", output]
  if not _run(cmd, verbose):
    return _give_up("nvcc failed on the CUDA harness (see the output above)")
  _say(verbose, f"compiled {output}")
  if run and not _run([output], verbose=True):
    return _give_up(f"{output} reported a failure")
  return output


def cuda_home_of(nvcc):
  """The CUDA toolkit root (with include/cuda_runtime.h): $CUDA_HOME, $CUDA_PATH, or where nvcc says it lives.

  nvcc is often a wrapper script on PATH (/usr/local/bin/nvcc -> exec /usr/local/cuda-13.0/bin/nvcc), so the
  path of the file is not enough; `nvcc --dryrun` prints its real TOP.
  """
  candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
  try:
    done = subprocess.run([nvcc, "--dryrun", "-x", "cu", "-E", os.devnull], capture_output=True, text=True,
                          check=False, timeout=60)
    for line in (done.stdout + done.stderr).splitlines():
      if line.startswith("#$ TOP="):
        candidates.append(line.split("=", 1)[1].strip())
  except (OSError, subprocess.SubprocessError):
    pass
  candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
  for home in filter(None, candidates):
    if os.path.exists(os.path.join(home, "include", "cuda_runtime.h")):
      return os.path.normpath(home)
  return None


def _gencode():
  archs = os.environ.get("TFROBUST_CUDA_ARCHS", DEFAULT_CUDA_ARCHS).replace(",", ";").split(";")
  archs = [a.strip() for a in archs if a.strip()]
  flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
  return flags + [f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}"]


def _up_to_date(output, inputs):
  if not os.path.exists(output):
    return False
  built = os.path.getmtime(output)
  return all(os.path.getmtime(p) < built for p in inputs if os.path.exists(p))


def _run(cmd, verbose):
  if verbose:
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
  try:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
  except OSError as e:
    print(f"{cmd[0]}: {e}", file=sys.stderr)
    return False
  if verbose or done.returncode != 0:
    sys.stderr.write(done.stdout + done.stderr)
  return done.returncode == 0


def _say(verbose, message):
  if verbose:
    print(f"tfrobust.ops.build: {message}", file=sys.stderr, flush=True)


def _give_up(reason):
  logging.getLogger(__name__).warning("tfrobust.ops.build: %s; the PGD step will run as plain TF ops (fallback)", reason)
  return None
