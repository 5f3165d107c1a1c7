# handsoff: developer commands. `make demo` and `make test` work on a fresh machine with Python 3.11.
PY ?= python3.11
VENV_STAMP := .venv/.installed
# demo.py uses the standard library only, so demo-stop works even without the venv.
DEMO_PY := $(if $(wildcard .venv/bin/python),.venv/bin/python,$(PY))

.PHONY: venv test test-fast lint demo demo-stop demo-alarm demo-ok demo-push bench services compose-config

venv: $(VENV_STAMP)

# Re-installs when pyproject.toml or constraints.txt change.
$(VENV_STAMP): pyproject.toml constraints.txt
	$(PY) -m venv .venv && .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -c constraints.txt -e ".[test]"
	# setuptools leaves a copy of the metadata next to the sources; on sys.path it would register the
	# Airflow plugin twice ("Plugin 'handsoff' already registered" in the UI). The installed copy stays.
	rm -rf provider/*.egg-info
	touch $@

# The whole suite, including the slow end-to-end tests that start real Airflow processes. It sets up what
# it needs first: the venv, and Debian's PostgreSQL, Redis, docker-compose and Chromium (installed when
# missing, never started: the tests start private instances), and checks docker-compose.yaml. Most tests
# wait on processes, so three pytest-xdist workers share two cores well; a test module stays on one
# worker (tests/conftest.py groups them). PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 3
test: $(VENV_STAMP) services compose-config
	.venv/bin/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup

test-fast: $(VENV_STAMP)
	.venv/bin/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup -m "not slow"

# ruff (lint and format) and the layer contracts of pyproject.toml ([tool.importlinter]).
lint: $(VENV_STAMP)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports --no-cache

# From an empty .demo/: a moto server (127.0.0.1:$${DEMO_MOTO_PORT:-5055}) with the demo's Lambda functions
# and alarms, Airflow on http://localhost:$${DEMO_PORT:-8080}, a git push that runs greeter-app and
# greeter-lambda. Stays in the foreground until Ctrl-C, which stops everything (DEMO_ARGS=--detach: returns).
demo: $(VENV_STAMP)
	.venv/bin/python scripts/demo.py $(DEMO_ARGS)

demo-stop:
	$(DEMO_PY) scripts/demo.py --stop

# See a rollback: TARGET's rollback alarm → ALARM, then a push (greeter-lambda rolls back at that wave).
demo-alarm:
	$(DEMO_PY) scripts/demo.py --alarm $(TARGET)

demo-ok:
	$(DEMO_PY) scripts/demo.py --ok $(TARGET)

demo-push:
	$(DEMO_PY) scripts/demo.py --push

# Installs (never starts) Debian's PostgreSQL, Redis, docker-compose and Chromium when missing: the Celery
# topology test (tests/system/test_celery_topology.py) starts private instances of its own.
services:
	bash scripts/ci_services.sh install

# Validates docker-compose.yaml with docker-compose 1.29 (no Docker engine needed).
compose-config:
	bash scripts/ci_services.sh compose-config

# The four benchmarks of bench/README.md (about 12 minutes on 2 cores), then its results tables.
# Raw results: bench/out/ (git-ignored); dag-factory gets its own venv there, never this one.
bench: $(VENV_STAMP)
	.venv/bin/python bench/sharding.py
	.venv/bin/python bench/parse.py
	.venv/bin/python bench/orchestration.py
	.venv/bin/python bench/bakes.py
	.venv/bin/python bench/report.py
