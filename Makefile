# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-sqlite test-postgres lint bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/lrs serve

# The whole suite on both event stores: SQLite (embedded) and PostgreSQL.
test: $(STAMP)
	$(BIN)/python -m pytest

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

clean:
	rm -rf $(VENV) .lrs-data
