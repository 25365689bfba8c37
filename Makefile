# Ladder's entry points. `make test` is what CI runs (via .ci/run).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PLATFORM := bash deploy/local/platform.sh

# Local development keys (documented in README); production sets its own file.
export INTAKE_API_KEYS_FILE ?= $(CURDIR)/deploy/local/api-keys.json
# How tools and tests reach the secured local broker (admin principal; written by
# deploy/local/kafka-secrets.sh when the broker starts; README "Security").
KAFKA_ENV := set -a; [ ! -f var/secrets/kafka-client.env ] || . var/secrets/kafka-client.env; set +a;

.PHONY: help install up down status test lint unit bench soak demo contracts chaos

help:
	@echo "make up | down | status   local platform (Kafka, PostgreSQL) and every service"
	@echo "make test                  the whole suite against the real broker and database"
	@echo "make unit                  unit tests only (no I/O)"
	@echo "make bench [BENCH=pipeline|intake|router|escalation|metrics]   benchmarks (var/bench/*.json)"
	@echo "make soak [SOAK_TICKETS=1000000]   a long run; table rows and sizes before, after, after retention"
	@echo "make contracts             regenerate docs/openapi, docs/asyncapi and docs/schemas from the code"
	@echo "make demo                  the main job: everything running, simulated traffic, KPIs checked"
	@echo "make chaos [CHAOS_TICKETS=100000]   the chaos suite (tests/chaos): faults, then the ledger"

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

install: $(VENV)/.installed

up: install
	$(PLATFORM) up

down:
	$(PLATFORM) down

status:
	$(PLATFORM) status

# Starts what is not running yet, runs the suite, and stops only what it started,
# also when a test fails.
test: install lint
	$(PLATFORM) up-test --no-services || { $(PLATFORM) down-test; exit 1; }
	@rc=0; $(KAFKA_ENV) $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; $(PLATFORM) down-test; exit $$rc

# The repository checks itself: lint, format and types (strict on shared/ and every core/).
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy shared services cli simulator

unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

bench: install
	LADDER_BENCH_TOOLS=1 bash deploy/local/install.sh
	$(PLATFORM) up-test --no-services || { $(PLATFORM) down-test; exit 1; }
	@rc=0; $(KAFKA_ENV) $(PY) -m bench $(BENCH) $(BENCH_ARGS) || rc=$$?; $(PLATFORM) down-test; exit $$rc

# A long run (not part of `make test`): SOAK_TICKETS lifecycles through the whole pipeline,
# then every service table's rows and size, before, after and after pruning (bench/soak.py).
SOAK_TICKETS ?= 1000000
soak: install
	$(PLATFORM) up-test --no-services || { $(PLATFORM) down-test; exit 1; }
	@rc=0; SOAK_TICKETS=$(SOAK_TICKETS) $(PY) -m bench soak $(SOAK_ARGS) || rc=$$?; $(PLATFORM) down-test; exit $$rc

contracts: install
	$(PY) -m cli.contracts

# The main job: the platform, the four services and simulated traffic, checked (deploy/local/demo.sh).
demo: install
	bash deploy/local/demo.sh

# The chaos suite at full size (tests/chaos/README.md): its own three-node cluster and
# PostgreSQL (started and stopped by the suite), faults while CHAOS_TICKETS tickets run,
# then the ledger; the report lands in var/chaos/report.json. `make test` runs 300 tickets.
CHAOS_TICKETS ?= 100000
CHAOS_ARGS ?=
chaos: install
	bash deploy/local/install.sh
	$(PY) -m tests.chaos --tickets $(CHAOS_TICKETS) --report var/chaos/report.json $(CHAOS_ARGS)
