# The two commands of the README: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint unit integration bench install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed
	$(BIN)/streamproc kafka install

demo: install
	$(BIN)/streamproc demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(BIN)/.installed
	$(BIN)/python -m pytest -m "not integration"

integration: install
	$(BIN)/python -m pytest -m integration

# Lint, then every test: doctests, unit tests, and integration tests on a real local broker
# (started and stopped by tests/conftest.py).
test: install lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/detection.py

clean:
	rm -rf $(VENV) *.egg-info
