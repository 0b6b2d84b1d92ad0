# Terracube — set-up, run, test. Every target creates the virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
RELIABILITY_STAMP := $(VENV)/.reliability-stamp

.PHONY: install run demo test reliability aggregator lint bench conformance conformance-general conformance-workflows clean

# The web pages' libraries come from the npm registry (backend/web/package-lock.json); without npm the
# API works and the pages answer an error saying how to install them.
$(STAMP): pyproject.toml backend/web/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	if command -v npm >/dev/null; then npm ci --prefix backend/web --no-audit --no-fund --silent; \
	else echo "npm not found: the web pages (backend/web) stay without their libraries"; fi
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

# The benchmarks' baselines that are other tools (titiler, rio-tiler) get a virtualenv of their own.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp
$(BENCH_STAMP): bench/baseline/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r bench/baseline/requirements.txt
	touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP)
	TERRACUBE_BENCH_BASELINE_PYTHON=$(BENCH_VENV)/bin/python $(PY) -m bench $(BENCH)

# The openEO federation's aggregator (tests/e2e/test_federation.py) gets a virtualenv of its own: it pins
# Flask 2.3 and an older openeo client than Terracube's.
AGGREGATOR_VENV  := .venv-aggregator
AGGREGATOR_STAMP := $(AGGREGATOR_VENV)/.installed-stamp
$(AGGREGATOR_STAMP): tests/federation/requirements.txt
	$(PYTHON) -m venv $(AGGREGATOR_VENV)
	$(AGGREGATOR_VENV)/bin/python -m pip install --quiet -r tests/federation/requirements.txt
	touch $(AGGREGATOR_STAMP)

aggregator: $(AGGREGATOR_STAMP)

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
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache
