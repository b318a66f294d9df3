"""The one owner of every file a run and a study write: their names, formats, the one parser of each, the one
rule for duplicate lines, the one upgrade path for files written by older versions, and the headline choice
(which adversarial accuracy a study compares). TensorFlow-free: the study, the report and the tests all ask here.

  names.py     the file and directory names of a run and of a sweep directory
  upgrade.py   defaults of keys added after files already existed (hparams, sweep.json)
  run.py       a run directory: hparams.json, result.json, examples.npz (per-example outcomes)
  sweep.py     a sweep directory: sweep.json, results.jsonl (appended whole, under a lock), trials/<id>/
  trial.py     a results line as a Trial, and the headline adversarial accuracy
"""
