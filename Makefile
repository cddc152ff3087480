# The two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: run test venv services lint schema

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock requirements-apt.txt recognition/synth/npm-fonts/package-lock.json
	./scripts/setup_venv.sh "$(VENV)"

services:
	./scripts/ensure_services.sh

run: venv
	./scripts/run.sh

# The whole suite on PostgreSQL and Redis, with lint and type checks.
test: venv services
	./scripts/test.sh $(ARGS)

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

# The committed OpenAPI schema, written from the API's code; `make test` fails when they differ.
schema: venv
	$(PY) manage.py spectacular --validate --fail-on-warn --file openapi.yaml
