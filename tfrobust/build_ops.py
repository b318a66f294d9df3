"""`python -m tfrobust.build_ops`: see tfrobust/cli/build_ops.py (compile the fused PGD op)."""

if __name__ == "__main__":
  from tfrobust.cli import build_ops
  build_ops.run()
