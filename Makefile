# The two commands a newcomer needs (see README.md):
#   make run    set up both environments, prepare the real data, run the flights pipeline through Airflow
#   make test   run the test suite (what CI runs)
SHELL := /bin/bash
PYTHON ?= python3
RUNWAY := .venv/bin/runway
PYTEST := .venv/bin/pytest -p no:cacheprovider --durations=15
RUNTIME_PYTEST := .venv-runtime/bin/python -m pytest -p no:cacheprovider --durations=15
PIPELINE ?= flights

.PHONY: help setup run test test-fast test-serving lint lock compile clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

setup: ## install both environments (idempotent; seconds when nothing changed)
	$(PYTHON) scripts/bootstrap.py

run: setup ## set up, run the flights pipeline through Airflow, and serve it on the local fleet (PIPELINE=penguins)
	$(RUNWAY) run $(PIPELINE) --serve

test: setup lint ## lint, then the whole test suite in both environments, end-to-end runs included (CI runs this)
	scripts/test-suites.sh

test-fast: setup ## unit tests only (seconds)
	$(PYTEST) -m "not runtime and not e2e" tests

test-serving: setup ## the model server's conformance suite (RUNWAY_MODEL_SERVER_BIN picks another server)
	$(RUNTIME_PYTEST) tests/conformance

lint: setup ## ruff and mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

compile: setup ## compile every pipeline to TFX IR
	$(RUNWAY) compile

lock: ## re-resolve both lock files (uv.lock and infra/runtime/requirements.txt)
	uv lock
	uv pip compile infra/runtime/requirements.in --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_39 --generate-hashes --no-header -o infra/runtime/requirements.txt

clean: ## remove everything the runs wrote (var/): data, artifacts, metadata, models, Airflow database
	rm -rf var
