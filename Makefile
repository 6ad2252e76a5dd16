# The two commands a new user needs: `make run` and `make test`. Everything else is set up by them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TEST_WORKERS ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bootstrap migrate clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

bootstrap: $(STAMP)
	@mkdir -p var
	@test -f .env || $(BIN)/python scripts/write_local_env.py .env

# Web (gunicorn) + worker + beat. With nothing configured: SQLite and an embedded broker under var/.
# Point DATABASE_URL / CELERY_BROKER_URL / REDIS_URL at PostgreSQL and Redis to use them.
run: bootstrap
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py ensure_schedules
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/honcho start -f Procfile

# The whole suite, in TEST_WORKERS processes (pytest-xdist; a test file stays in one process, so an end-to-end
# module's processes start once; each process has its own test database and Redis databases: TEST_WORKERS=1 for
# one process, at most 3). Without DATABASE_URL: the local PostgreSQL on 127.0.0.1 when it answers, else SQLite
# (tests that need PostgreSQL semantics then skip, saying why). pytest's "no tests ran" (exit 5) fails.
test: $(STAMP)
	@mkdir -p var
	@set -o pipefail; \
	if [ -z "$$DATABASE_URL" ]; then \
	  if $(BIN)/python scripts/pg_reachable.py; then export DATABASE_URL=postgres://postgres@127.0.0.1:5432/ml_connector; \
	  else echo "PostgreSQL not reachable on 127.0.0.1:5432: running on SQLite"; fi; \
	fi; \
	echo "database: $${DATABASE_URL:-sqlite}"; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# ruff (style, and no function over 60 statements or 12 branches), the import layers (import-linter contracts in
# pyproject.toml) and no product module over 500 lines.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_module_size.py

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf var/broker var/broker-processed .pytest_cache

# `make run` plus the mock Fusion and Commerce, a demo connection with its mappings and a stream of signed orders,
# one of which needs review; prints where to look. Ctrl-C stops everything. Ports: WEB_PORT, FUSION_MOCK_PORT,
# COMMERCE_MOCK_PORT (8000, 8801, 8802).
.PHONY: demo
demo: bootstrap
	$(BIN)/python scripts/demo.py

# Every benchmark of the connector with real processes against the mock systems (bench/README.md): a table of each
# figure against its target, the results under bench/results/, exit 1 when a target is missed. Needs PostgreSQL and a
# Redis of its own (BENCH_REDIS, default redis://127.0.0.1:6387). BENCH_ARGS=--quick for short runs.
.PHONY: bench
bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)
