# The README's two commands: `make demo` (the default study on the embedded digits data, with its report)
# and `make test` (install everything from this project's files, then every test).
# TF=cpu (default) installs tensorflow-cpu; TF=gpu installs tensorflow[and-cuda].
PYTHON ?= python3
TF ?= cpu
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(TF)
DEMO_DIR ?= runs/digits_study
DEMO_STEPS_DIR ?= runs/digits_study_steps

.PHONY: demo demo-auto demo-steps run test venv ops bench clean readme-results calibration calibration-base

$(STAMP): setup.py requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -r requirements-nodeps.txt --no-deps
	$(PY) -m pip install -q -e ".[$(TF),test]"
	touch $(STAMP)

venv: $(STAMP)

# The fused custom op: pip's isolated build has no TensorFlow to compile against, so it is built here, after
# the install. A missing compiler only means the pure-TF fallback is used.
ops: $(STAMP)
	-$(PY) -m tfrobust.build_ops

demo: $(STAMP) ops
	$(PY) -m tfrobust.sweep --flagfile=flags/digits_study.cfg --sweep_dir=$(DEMO_DIR)

# The same study with seeds added look by look until each claim is decided (--seeds=auto; up to 24 seeds).
demo-auto: $(STAMP) ops
	$(PY) -m tfrobust.sweep --flagfile=flags/digits_study_auto.cfg --sweep_dir=runs/digits_study_auto

# The same study under the steps budget (every network makes the same number of SGD updates).
demo-steps: $(STAMP) ops
	$(PY) -m tfrobust.sweep --flagfile=flags/digits_study_steps.cfg --sweep_dir=$(DEMO_STEPS_DIR)

# README.md's verdict table is built from the committed docs/results/*/verdicts.json (between its verdicts markers)
# and docs/results/README.md's tables are pasted from each study's summary.md (between results:NAME markers);
# tests/report/test_readme_results.py fails when they disagree.
readme-results: $(STAMP)
	$(PY) -m tfrobust.readme_results

# The verdict rules' measured error rates (docs/verdicts.md, between its calibration markers): simulated studies
# with a known truth and the mnist5k study's noise, judged by the report's own code (a few minutes on 2 cores).
calibration: $(STAMP)
	$(PY) -m tfrobust.calibrate --from_study=docs/results/calibration_base/digits.npz --docs=docs/verdicts.md

# The real-noise base of the calibration: 200 digits networks trained alike, packed into the .npz above.
calibration-base: $(STAMP) ops
	$(PY) -m tfrobust.sweep --flagfile=flags/digits_study_calibration_base.cfg --sweep_dir=runs/calibration_base
	$(PY) -m tfrobust.calibrate --from_study=runs/calibration_base --save_base=docs/results/calibration_base/digits.npz

# One training run with the design card's command (no study).
run: $(STAMP)
	$(PY) -m tfrobust.main --batch_size=256 --lr=0.05

# buildifier (the BUILD lint of tests/test_bazel.py) comes from npm where npm exists; the test skips otherwise.
.tools/node_modules/@bazel/buildifier-linux_x64/buildifier:
	-command -v npm >/dev/null && npm install --silent --no-audit --no-fund --prefix .tools @bazel/buildifier-linux_x64

# Two test processes (pytest-xdist), each taking whole files (module fixtures are built once): on 2 cores the suite
# takes about two thirds of the time one process does. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: $(STAMP) ops .tools/node_modules/@bazel/buildifier-linux_x64/buildifier
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

bench: $(STAMP) ops
	$(PY) -m pip install -q -e ".[$(TF),bench]"
	$(PY) bench/onednn.py
	$(PY) bench/train_throughput.py
	$(PY) bench/attack_throughput.py
	$(PY) bench/hessian.py
	$(PY) bench/hessian_pyhessian.py
	$(PY) bench/fused_step.py

clean:
	rm -rf $(VENV) .tools build *.egg-info tfrobust/ops/*.so
