"""Bad robustness flags through the three entry points the evaluator serves (`tfrobust.main`, `tfrobust.sweep`,
`tfrobust.evaluate`): one line on stderr naming the flag, exit status 2, nothing written. Each case is a fresh
process (≈ 4 s of TensorFlow import); the config's own validation is test_config.py."""

from conftest import assert_refused

CASES = [  # (module, flags, what the error line must say)
    ("tfrobust.main", ["--attacks=apgd_ce", "--square_queries=0"],
     "--square_queries=0: the query budget must be > 0"),
    ("tfrobust.main", ["--attacks=pgd", "--eps=0.1,0.05"], "--eps=0.1,0.05: the ε grid must be strictly ascending"),
    ("tfrobust.main", ["--attacks=apgd_ce", "--norms=inf,1"], "unknown norm '1'"),
    ("tfrobust.main", ["--attacks=pgd", "--bisection_steps=-2"], "--bisection_steps=-2: must be in [0, 20]"),
    ("tfrobust.sweep", ["--attacks=autoattack", "--eps_l2=0.5,0.5", "--norms=2", "--batch_sizes=16", "--seeds=0"],
     "--eps_l2=0.5,0.5: the ε grid must be strictly ascending"),
    ("tfrobust.evaluate", ["--saved_model={model}", "--dataset=digits", "--attacks=autoattack", "--apgd_steps=0"],
     "--apgd_steps=0: must be > 0"),  # refused before the model is read: an empty directory will do
]


def test_bad_robustness_flags_are_one_line_exit_2_nothing_written(tmp_path):
  model = tmp_path / "model"
  model.mkdir()
  outputs = {"tfrobust.evaluate": "--output", "tfrobust.sweep": "--sweep_dir"}
  assert_refused([(module, [a.format(model=model) for a in args], outputs.get(module, "--output_dir"), message)
                  for module, args, message in CASES], tmp_path, workers=2)
