# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Development installs the dev lock, which includes the runtime lock the image installs.
LOCKS := requirements.lock requirements-dev.lock
STAMP := $(VENV)/.installed-$(shell cat $(LOCKS) | sha1sum | cut -c1-12)
# Starts embedded PostgreSQL/Redis only for what DATABASE_URL / REDIS_URL do not name.
SERVICES := eval "$$($(BIN)/python -m config.embedded start 2>/dev/null)"

.PHONY: install test check lint typecheck demo services stop bench clean

$(STAMP): $(LOCKS)
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.lock
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

test: install
	@$(SERVICES); $(BIN)/pytest

check: lint typecheck

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	@$(SERVICES); $(BIN)/mypy .

services: install
	@$(BIN)/python -m config.embedded start

stop:
	@$(BIN)/python -m config.embedded stop

demo: install
	@$(SERVICES); bash scripts/demo.sh

bench: install
	@$(SERVICES); $(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .local
