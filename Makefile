# The two commands of the README. Both create .venv on first use and reuse it afterwards.
VENV ?= .venv
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
DEMO_OUT ?= runs/demo

.PHONY: setup demo test test-slow bench bench-quick lint

setup:
	@VENV=$(VENV) bash scripts/setup.sh

demo: setup
	$(VENV)/bin/pcclip demo --out $(DEMO_OUT)

test: setup
	$(VENV)/bin/python -m pytest -q

test-slow: setup
	$(VENV)/bin/python -m pytest -q -m slow --runslow

bench: setup
	$(VENV)/bin/python benchmarks/run.py

bench-quick: setup
	$(VENV)/bin/python benchmarks/run.py --quick

lint: setup
	$(VENV)/bin/ruff check .
