# Set-up and the two jobs a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# the core (what `make demo` needs) and the full set-up (extras, dev tools: everything else)
CORE_STAMP := $(VENV)/.ct-plugin-core-installed
STAMP := $(VENV)/.ct-plugin-installed
# The real tables: a CT_PLUGIN_DATA you set wins (?=); else ../shared/data when it exists (CI
# keeps them there); else nothing, and ct-plugin looks in ~/.cache/ct-plugin/data
# (`ct-plugin datasets --where` shows the order).
CT_PLUGIN_DATA ?= $(wildcard $(abspath ../shared/data))
ifneq ($(strip $(CT_PLUGIN_DATA)),)
export CT_PLUGIN_DATA
endif

.PHONY: setup demo test test-fast lint bench clean

setup: $(STAMP)

# torch first, pinned by constraints.txt: its CPU build from PyTorch's CPU index on a machine without
# an NVIDIA GPU when that index answers within 4 s, else the default index (tools/torch_index.py
# prints the pip arguments and says why on stderr); then the core, editable, without extras
$(CORE_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt $$($(PY) tools/torch_index.py) torch
	@# setuptools' notice that an editable install maps ct_plugin.adapters to adapters/ (informational only)
	PYTHONWARNINGS="ignore:Editable installation" $(PIP) install --quiet -c constraints.txt -e .
	touch $@

$(STAMP): $(CORE_STAMP) adapters/carla/install.py
	PYTHONWARNINGS="ignore:Editable installation" $(PIP) install --quiet -c constraints.txt -e '.[dev,dice,carla,ray,mlflow,tensorboard]'
	$(PY) -m ct_plugin.adapters.carla.install --quiet -c constraints.txt
	touch $@

# the demo needs only the core; a venv that `make setup` completed has it already
demo: $(if $(wildcard $(STAMP)),$(STAMP),$(CORE_STAMP))
	$(PY) examples/demo.py

test: setup
	$(PY) -m pytest -m "slow or not slow" -q

test-fast: setup
	$(PY) -m pytest -m "not slow" -q

lint: setup
	$(VENV)/bin/ruff check ct_plugin adapters tests examples benchmarks tools
	$(PY) -m pytest -q tests/test_architecture.py   # the import layers of docs/architecture.md (import-linter)

bench: setup
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) runs .pytest_cache
