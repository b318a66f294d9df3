"""One experiment end to end, above training and the evaluators (which sit side by side beneath it):

  run.py       data → model → train (tfrobust.train) → export → evaluators (tfrobust.evaluators) → result.json
  outputs.py   what an Evaluation becomes on disk and in TensorBoard, the same for every evaluator
"""
