# Two commands do all the set-up on a fresh machine:
#   make demo   - create .venv, install, run the main job on embedded defaults
#   make test   - same environment, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR ?= var/demo
DEMO_PERSONS ?= 20000

.PHONY: demo test test-all check bench venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# -qq: errors only. setuptools warns on every editable install of a flat layout that folders named like the
	@# packages may take precedence: they are the packages, so the warning says nothing here
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/riskctl demo --out $(DEMO_DIR) --persons $(DEMO_PERSONS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# ruff (lint, import order, formatting) and mypy (types; strict for models/ and evaluation/): configured in pyproject.toml
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

bench: $(STAMP)
	$(BIN)/python -m features.bench --persons 100000

clean:
	rm -rf $(VENV) var mlruns mlflow.db
