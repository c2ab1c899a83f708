# Everything a fresh machine needs: Python 3.11+ and this file.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
NB     := $(VENV)/.installed-notebook

.PHONY: demo test lint bench validate notebook docs build clean

# the simulation core, compiled with mypyc (setup.py; docs/design.md §8, Speed)
COMPILED := sim/model/_compiled.json
MODEL    := $(filter-out sim/model/__init__.py sim/model/errors.py,$(wildcard sim/model/*.py))

# what running needs only (make demo, make validate)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

# the model compiled once the dependencies are in (mypyc reads their types, and the type
# stubs of pandas and PyYAML, which the modules it follows import), and again whenever
# its source changes; without a C compiler it records that nothing was compiled
# and the interpreted model runs (same results)
$(COMPILED): $(STAMP) setup.py $(MODEL)
	$(BIN)/python -m pip install --quiet "mypy>=1.10" "setuptools>=77" wheel \
		"pandas-stubs>=2.1" "types-PyYAML>=6.0"
	$(BIN)/python setup.py --quiet build_ext --inplace

build: $(COMPILED)

# the test and lint tools on top (make test, make lint, make docs)
$(DEV): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV)

# Jupyter Lab for the notebooks
$(NB): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[notebook]'
	touch $(NB)

demo: $(STAMP) $(COMPILED)
	$(BIN)/hvsim run scenarios/baseline.yaml --replications 3 --report --out results/demo --force

test: $(DEV) $(COMPILED)
	$(BIN)/python -m pytest -n 2 -q

notebook: $(NB) $(COMPILED)
	$(BIN)/jupyter lab notebooks/

docs: $(STAMP)
	$(BIN)/python -m sim.report.reference docs/scenario-reference.md

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy sim

validate: $(STAMP) $(COMPILED)
	$(BIN)/hvsim validate

bench: $(DEV) $(COMPILED)
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/sweep_scaling.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/capacity_time.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build $(COMPILED)
	rm -f sim/*.so sim/model/*.so
