# Task runner.  The README's two commands are `make demo` and `make test-all`.
PY ?= python3

.PHONY: deps demo test test-all lint format bench models

deps:
	bash scripts/install-deps.sh

demo: deps
	$(PY) -m govpulse.cli demo

test:
	$(PY) -m pytest

test-all: deps
	$(PY) -m pytest

lint:
	ruff check .
	ruff format --check .

format:
	ruff format .
	ruff check --fix .

bench:
	$(PY) bench/run_all.py

# Retrain the shipped classifier models from ../shared/data (GOVPULSE_SHARED_DATA).
models:
	$(PY) -m classify.build_models --out classify/models
