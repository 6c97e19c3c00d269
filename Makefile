# hubproxy: the everyday commands. `make run` and `make test` set everything up themselves.
# `make install` installs the package alone (what a server needs); `make test` and `make lint`
# add the test and lint tools ([test,lint]) first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Stamps: the package alone; the package with its test and lint tools.
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev

.PHONY: install dev run test lint bench clean node-deps

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

dev: $(DEV)

$(DEV): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $(DEV)

run: $(STAMP)
	$(BIN)/hubproxy serve

test: $(DEV) tests/node/node_modules
	$(BIN)/pytest

# AIGNE's client SDK for tests/test_aigne_sdk.py, when npm is there (the test says why it skips
# otherwise; .ci/run installs Node first).
tests/node/node_modules: tests/node/package-lock.json
	@if command -v npm >/dev/null; then $(MAKE) node-deps; else echo "npm missing: the AIGNE SDK test will skip"; fi

# AIGNE's client SDK, pinned by tests/node/package-lock.json, for tests/test_aigne_sdk.py.
node-deps:
	cd tests/node && npm ci --no-audit --no-fund

lint: $(DEV)
	$(BIN)/ruff check hubproxy tests bench
	$(BIN)/ruff format --check hubproxy tests bench
	$(BIN)/mypy

# `make bench BACKEND=postgres`: the billed hubproxy on SQLite against PostgreSQL (one
# instance, and three sharing a port); it starts its own cluster (apt-get install postgresql).
BACKEND ?= sqlite
bench: $(STAMP)
	$(BIN)/python -m bench --backend $(BACKEND)

clean:
	rm -rf $(VENV) data
