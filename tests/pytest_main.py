"""Bazel's entry point for a py_test: runs pytest on the test file named in the target's args."""

import sys

import pytest

if __name__ == "__main__":
  sys.exit(pytest.main(["-q", *sys.argv[1:]]))
