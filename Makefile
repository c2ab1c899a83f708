# Everything a fresh machine needs: Python 3.11+ and this file.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
NB     := $(VENV)/.installed-notebook

.PHONY: demo test lint bench validate notebook docs clean

# what running needs only (make demo, make validate)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

# the test and lint tools on top (make test, make lint, make docs)
$(DEV): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV)

# Jupyter Lab for the notebooks
$(NB): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[notebook]'
	touch $(NB)

demo: $(STAMP)
	$(BIN)/hvsim run scenarios/baseline.yaml --replications 3 --report --out results/demo --force

test: $(DEV)
	$(BIN)/python -m pytest -n 2 -q

notebook: $(NB)
	$(BIN)/jupyter lab notebooks/

docs: $(STAMP)
	$(BIN)/python -m sim.report.reference docs/scenario-reference.md

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy sim

validate: $(STAMP)
	$(BIN)/hvsim validate

bench: $(DEV)
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/sweep_scaling.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/capacity_time.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
