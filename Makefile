# Terracube — set-up, run, test. Every target creates the virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
RELIABILITY_STAMP := $(VENV)/.reliability-stamp

.PHONY: install run demo test reliability lint bench conformance conformance-general conformance-workflows clean

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

# The reliability suite (tests/reliability): schemathesis over the openEO API document, bad requests,
# load and the worker memory ceiling, against real servers; a few minutes. Needs the `reliability` extra.
$(RELIABILITY_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,reliability]"
	touch $(RELIABILITY_STAMP)

reliability: $(RELIABILITY_STAMP)
	$(PY) -m pytest tests/reliability $(PYTEST_ARGS)

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

# The official suite's workflows (25 small graphs) against the shared Bolzano Sentinel-2 sample.
conformance-workflows: install
	$(PY) conformance/run_general.py workflows

clean:
	rm -rf $(VENV) .pytest_cache
