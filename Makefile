# Terracube — set-up, run, test. Every target creates the virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run demo test lint bench conformance conformance-general clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/terracube demo

run: install
	$(VENV)/bin/terracube demo
	$(VENV)/bin/terracube serve

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m bench $(BENCH)

lint: install
	$(VENV)/bin/ruff check backend processes udf tests conformance bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

conformance: install
	$(PY) conformance/run_processes.py --min-passed baseline

conformance-general: install
	$(PY) conformance/run_general.py

clean:
	rm -rf $(VENV) .pytest_cache
