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

.PHONY: help install tools lock image up down status test lint unit bench soak demo contracts chaos screenshots compose-secrets

help:
	@echo "make up | down | status   local platform (Kafka, PostgreSQL) and every service"
	@echo "make test                  the whole suite against the real broker and database"
	@echo "make unit                  unit tests only (no I/O)"
	@echo "make bench [BENCH=pipeline|intake|router|escalation|metrics]   benchmarks (var/bench/*.json)"
	@echo "  [BENCH_ARGS=--profile]   ...and where each service spends its CPU (py-spy)"
	@echo "make soak [SOAK_TICKETS=1000000]   a long run; table rows and sizes before, after, after retention"
	@echo "make contracts             regenerate docs/openapi, docs/asyncapi and docs/schemas from the code"
	@echo "make demo                  the main job: everything running, simulated traffic, KPIs checked"
	@echo "  [DEMO_VIA=zendesk|jira|zammad|freshdesk]   ...with a help desk plugged in (its webhooks)"
	@echo "make screenshots           README's pictures of the ladder page and a weekly report (docs/images)"
	@echo "make compose-secrets       the secrets docker-compose.yml mounts, generated once (var/secrets/compose)"
	@echo "make chaos [CHAOS_TICKETS=100000]   the chaos suite (tests/chaos): faults, then the ledger"
	@echo "make image                 the container image ladder:$(VERSION) (Dockerfile, from requirements/runtime.lock)"
	@echo "make lock                  re-resolve requirements/*.lock from pyproject.toml (hashes)"

# Dependencies come from the hashed locks only (requirements/: runtime.lock is also what the
# image installs; test.lock adds the test tools at the same versions); then the project
# itself, without dependencies.
$(VENV)/.installed: pyproject.toml requirements/runtime.lock requirements/test.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements/runtime.lock -r requirements/test.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

install: $(VENV)/.installed tools

# Tools the chart checks need (tests/unit/deploy/test_helm.py), pinned, built or installed
# here: helm from the Go module proxy, checkov in its own virtualenv (its pins conflict with
# the test tools') from a hashed lock.
HELM_VERSION := v3.21.4
HELM_STAMP := var/bin/.helm-$(HELM_VERSION)
CHECKOV := var/tools/checkov/bin/checkov
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
tools: $(HELM_STAMP) $(CHECKOV)

$(HELM_STAMP):
	@[ -x "$(GO)" ] || { echo "go is required to build helm $(HELM_VERSION) (the Go module proxy serves it)"; exit 1; }
	@mkdir -p var/bin
	cd /tmp && GOBIN=$(CURDIR)/var/bin GOFLAGS=-mod=mod $(GO) install \
	  -ldflags "-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@var/bin/helm version --short | grep -qx '$(HELM_VERSION)\(+.*\)\?' || { echo "var/bin/helm is not $(HELM_VERSION)"; exit 1; }
	@touch $@

$(CHECKOV): requirements/checkov.lock
	rm -rf var/tools/checkov
	$(PYTHON) -m venv var/tools/checkov
	var/tools/checkov/bin/pip install --quiet --require-hashes -r requirements/checkov.lock
	@touch $@

# py-spy for `make bench BENCH_ARGS=--profile` (bench/common.py Profiler), pinned, in its own virtualenv.
PY_SPY := var/tools/py-spy/bin/py-spy
$(PY_SPY): requirements/py-spy.lock
	rm -rf var/tools/py-spy
	$(PYTHON) -m venv var/tools/py-spy
	var/tools/py-spy/bin/pip install --quiet --require-hashes -r requirements/py-spy.lock
	@touch $@

# Re-resolves the locks (uv, pinned, in a throwaway virtualenv). Commit the result.
UV_VERSION := 0.13.8
lock:
	rm -rf var/tools/uv && $(PYTHON) -m venv var/tools/uv && var/tools/uv/bin/pip install --quiet uv==$(UV_VERSION)
	UV="var/tools/uv/bin/uv pip compile --universal --generate-hashes --python-version 3.11 --no-header --quiet"; \
	$$UV pyproject.toml -o requirements/runtime.lock && \
	$$UV pyproject.toml --extra test -c requirements/runtime.lock -o requirements/test.lock && \
	$$UV requirements/checkov.in -o requirements/checkov.lock && \
	$$UV requirements/py-spy.in -o requirements/py-spy.lock

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
image:
	docker build -t ladder:$(VERSION) .

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

bench: install $(PY_SPY)
	LADDER_BENCH_TOOLS=1 bash deploy/local/install.sh
	$(PLATFORM) up-test --no-services || { $(PLATFORM) down-test; exit 1; }
	@rc=0; $(KAFKA_ENV) $(PY) -m bench $(BENCH) $(BENCH_ARGS) || rc=$$?; $(PLATFORM) down-test; exit $$rc

# A long run (not part of `make test`): SOAK_TICKETS lifecycles through the whole pipeline,
# then every service table's rows and size, before, after and after pruning (bench/soak.py).
SOAK_TICKETS ?= 1000000
soak: install
	$(PLATFORM) up-test --no-services || { $(PLATFORM) down-test; exit 1; }
	@rc=0; $(KAFKA_ENV) SOAK_TICKETS=$(SOAK_TICKETS) $(PY) -m bench soak $(SOAK_ARGS) || rc=$$?; $(PLATFORM) down-test; exit $$rc

contracts: install
	$(PY) -m cli.contracts

# The README's pictures (docs/images/*.png): realistic tickets projected into a fresh schema,
# the real metrics service on it, the ladder page and last week's report in Debian's Chromium
# (bench/ladder_page.py; the schema is dropped afterwards).
screenshots: install
	$(PLATFORM) up-test --no-services || { $(PLATFORM) down-test; exit 1; }
	@rc=0; $(KAFKA_ENV) $(PY) -m bench ladder_page --tickets 3000 --days 35 --rounds 1 --screenshots docs/images \
	  --out var/bench/screenshots.json || rc=$$?; $(PLATFORM) down-test; exit $$rc

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

# The secrets docker-compose.yml mounts, generated once under var/secrets/compose/ (never committed).
compose-secrets:
	bash deploy/local/compose-secrets.sh
