# Set-up and the two jobs a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.ct-plugin-installed
DATA ?= $(abspath ../shared/data)

.PHONY: setup demo test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt adapters/carla/install.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e '.[dev,dice,carla,ray,mlflow,tensorboard]'
	$(PY) -m ct_plugin.adapters.carla.install --quiet -c constraints.txt
	touch $(STAMP)

demo: setup
	CT_PLUGIN_DATA=$(DATA) $(PY) examples/demo.py

test: setup
	CT_PLUGIN_DATA=$(DATA) $(PY) -m pytest -m "slow or not slow" -q

test-fast: setup
	CT_PLUGIN_DATA=$(DATA) $(PY) -m pytest -m "not slow" -q

lint: setup
	$(VENV)/bin/ruff check ct_plugin adapters tests examples benchmarks

bench: setup
	CT_PLUGIN_DATA=$(DATA) $(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) runs .pytest_cache
