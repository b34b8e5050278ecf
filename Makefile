# Two commands do all the set-up: `make run` (the demo, served) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# The demo's environment: DEMO_MODE on, DEBUG off, keys generated on first use (var/demo.env).
DEMO_ENV := scripts/demo-env
WEB_PORT ?= 8000

.PHONY: install install-dev services migrate demo run test test-fast lint format bench loadtest chaos

# What the service runs (requirements.txt); tests and tooling add requirements-dev.txt.
$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PIP) install -q -r requirements-dev.txt
	@touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

services:
	@$(PY) scripts/check_services.py

migrate: install services
	@$(PY) scripts/ensure_database.py
	@$(DEMO_ENV) $(PY) manage.py migrate --noinput -v 0

demo: migrate
	@$(DEMO_ENV) $(PY) manage.py collectstatic --noinput -v 0

# Every Procfile process under scripts/supervise.py: a crashed one is restarted, logs go to
# var/log/ (the console shows warnings and the banner; VERBOSE=1 shows everything), Ctrl-C stops
# them all and exits 0. The demo sale is seeded once the shop answers, so its countdown starts
# then; the banner says how long is left.
run: demo
	@$(DEMO_ENV) $(PY) scripts/supervise.py --procfile Procfile --log-dir var/log \
		--metrics-dir var/metrics \
		$(if $(VERBOSE),--verbose,) \
		--ready-url http://127.0.0.1:$(WEB_PORT)/healthz \
		--when-ready "LOG_LEVEL=WARNING $(PY) manage.py seed_demo --banner"

# The schema audit plugin lists any /api/ answer of the suite that /api/schema/ does not document.
# TEST_WORKERS pytest-xdist workers (0: one process), each with a test database, Celery queue,
# gateway ledger and Redis prefix of its own. worksteal hands each worker a run of consecutive
# tests (so a file mostly stays on one worker) and rebalances at the end. Not loadfile,
# loadscope or loadgroup: they key tests by node id, and schemathesis's per-operation tests
# share one, so only one of the API operations would run.
TEST_WORKERS ?= 2
test: install-dev services
	PYTHONPATH=. $(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal \
		-p apps.core.testing.schema_audit $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Issue 6: the benchmark (wrk; three repetitions, medians), the Locust sale simulator and the
# chaos scenarios at full scale. Each uses its own database / Redis; see docs/benchmarks.md.
bench: install-dev services
	scripts/bench $(BENCH_ARGS)

loadtest: install-dev services
	scripts/loadtest $(LOADTEST_ARGS)

chaos: install-dev services
	scripts/chaos $(CHAOS_ARGS)
