# Task runner: make test | lint | bench | models
PY ?= python

.PHONY: test lint format bench

test:
	$(PY) -m pytest

lint:
	ruff check .
	ruff format --check .

format:
	ruff format .
	ruff check --fix .

bench:
	$(PY) bench/run_all.py
