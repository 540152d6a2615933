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

# ruff (lint, import order, formatting), mypy and the import contracts (lint-imports) (types; strict for models/ and evaluation/): configured in pyproject.toml
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

# every performance benchmark (benchmarks/, each a script that prints its figures; long: tens of minutes). The
# service's needs the demo's models: make demo (or riskctl demo --no-serve) first.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_features.py --persons 100000
	$(BIN)/python benchmarks/bench_training.py --persons 100000
	$(BIN)/python benchmarks/bench_cases.py --persons 100000
	$(BIN)/python benchmarks/bench_console.py --persons 20000
	$(BIN)/python benchmarks/bench_fairness.py --rows 4000 20000 50000
	$(BIN)/python benchmarks/bench_monitoring.py --assessments 100000
	$(BIN)/python benchmarks/bench_explain.py --persons 5000 --baseline HEAD
	$(BIN)/python benchmarks/bench_service.py --data $(DEMO_DIR)/data

clean:
	rm -rf $(VENV) var mlruns mlflow.db
