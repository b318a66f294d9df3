# The README's two commands: `make demo` (run the main job on the embedded default dataset) and `make test`.
# TF=cpu (default) installs tensorflow-cpu; TF=gpu installs tensorflow[and-cuda].
PYTHON ?= python3
TF ?= cpu
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(TF)

.PHONY: demo test venv bench clean

$(STAMP): setup.py requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -r requirements-nodeps.txt --no-deps
	$(PY) -m pip install -q -e ".[$(TF),test]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m tfrobust.main --batch_size=256 --lr=0.05 --output_dir=runs/demo

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) bench/train_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info
