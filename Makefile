# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-sqlite test-postgres lint bench clean browser

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/lrs serve

# The whole suite on both event stores: SQLite (embedded) and PostgreSQL, and the dashboard in a
# real browser; one pytest process per core (most tests wait on servers, brokers and browsers),
# the slowest tests named at the end so the suite's time stays in sight.
TEST_PROCESSES ?= auto
test: $(STAMP) browser
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --durations=15

# The browser tests' tools, installed once: Debian's Chromium (driven by Playwright from PyPI;
# Playwright's own browser download is unreachable) and axe-core from npm for the accessibility
# check. Each step is skipped when its tool is already there.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
AXE := .cache/axe/node_modules/axe-core/axe.min.js
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq chromium; }
	@test -f $(AXE) || { command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq npm; }; \
		npm install --silent --no-audit --no-fund --prefix .cache/axe axe-core@4; }

lint: $(STAMP)
	$(BIN)/ruff check lrs ingest schemas projections tests bench
	$(BIN)/mypy

# wrk (Debian's package) drives bench/ingest.py's load from C, leaving the cores to the server.
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || apt-get install -y wrk >/dev/null 2>&1 || echo "no wrk: bench/ingest.py drives the load from Python"
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/documents.py
	$(BIN)/python bench/attachments.py
	$(BIN)/python bench/abuse.py
	$(BIN)/python bench/fairness.py
	$(BIN)/python bench/idle.py

clean:
	rm -rf $(VENV) .lrs-data .cache build
