# Two commands do all the set-up: `make run` (the demo, served) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: install services migrate demo run test test-fast lint format bench loadtest chaos

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	@touch $(STAMP)

install: $(STAMP)

services:
	@$(PY) scripts/check_services.py

migrate: install services
	@$(PY) scripts/ensure_database.py
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py seed_demo

run: demo
	@echo ""
	@echo "  Shop:        http://127.0.0.1:8000/"
	@echo "  Admin:       http://127.0.0.1:8000/admin/    (admin / admin-demo-pass)"
	@echo "  API docs:    http://127.0.0.1:8000/api/docs/"
	@echo "  WebSockets:  ws://127.0.0.1:8001/ws/"
	@echo "  Shoppers:    alice, bob, carol, dave        (password shop-demo-pass)"
	@echo "  Ctrl-C stops every process."
	@echo ""
	$(VENV)/bin/honcho start -f Procfile

test: install services
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Issue 6: the benchmark (wrk; three repetitions, medians), the Locust sale simulator and the
# chaos scenarios at full scale. Each uses its own database / Redis; see docs/benchmarks.md.
bench: install services
	scripts/bench $(BENCH_ARGS)

loadtest: install services
	scripts/loadtest $(LOADTEST_ARGS)

chaos: install services
	scripts/chaos $(CHAOS_ARGS)
