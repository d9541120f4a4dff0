# simsmith — two commands to start: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test test-fast bench venv lint clean services-up services-down

$(PY):
	$(PYTHON) -m venv $(VENV)

venv: $(PY)

# make run: local virtualenv, package installed, embedded workspace (SQLite, dev-mode soft HSM,
# demo SIMs and eSIM profiles, a demo API key), then the API on http://127.0.0.1:$(PORT).
PORT ?= 8000
run: $(PY)
	$(PIP) install -e .
	$(VENV)/bin/simsmith demo --serve --port $(PORT)

# make test: Debian packages the tests need, test dependencies, real services, then the whole
# suite (ruff, mypy, pytest on SQLite and every storage test again on PostgreSQL).
test: $(PY)
	scripts/install-system-deps.sh
	$(PIP) install -e '.[test,postgres,pkcs11,cards]'
	scripts/test.sh

# make test-fast: the quick loop while editing — no services started, SQLite only, tests marked
# `slow` left out (the tests of real services skip without them). make test runs everything.
test-fast: $(PY)
	$(PIP) install -e '.[test,postgres,pkcs11,cards]'
	env -u SIMSMITH_TEST_PG_URL -u SIMSMITH_REQUIRE_SERVICES -u SIMSMITH_REQUIRE_PG \
	  $(VENV)/bin/pytest -m "not slow" -p no:cacheprovider

lint: $(PY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(PY)
	scripts/install-system-deps.sh
	$(PIP) install -e '.[test,postgres,pkcs11,cards,bench]'
	scripts/bench.sh

clean:
	rm -rf build .simsmith
