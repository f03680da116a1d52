# Every target is phony; `make` alone checks everything.
.PHONY: all install run test test-slow lint format bench clean
.DEFAULT_GOAL := all

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOURCES := src tests benchmarks hypertuner.py
# This checkout's own sources first, also for Ray's worker processes (which inherit the env).
export PYTHONPATH := $(CURDIR)/src

all: lint test

install: $(STAMP)

# The lock pins torch 2.13.0 (CPU) together with everything else in one pip command, so no
# dependency can pull in a CUDA build of torch.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python hypertuner.py

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2  # two workers: one per core of the CI machine

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy src

format: $(STAMP)
	$(BIN)/ruff check --fix $(SOURCES)
	$(BIN)/ruff format $(SOURCES)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf runs reports/default .pytest_cache .mypy_cache .ruff_cache
