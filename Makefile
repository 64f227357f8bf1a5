# Two entry points: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: run test lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/finsam-eval run --out results

lint: $(STAMP_TEST)
	$(BIN)/ruff check finsam_eval tests benchmarks
	$(BIN)/ruff format --check finsam_eval tests benchmarks

format: $(STAMP_TEST)
	$(BIN)/ruff format finsam_eval tests benchmarks
	$(BIN)/ruff check --fix finsam_eval tests benchmarks

test: $(STAMP_TEST) lint
	$(BIN)/python -m pytest -n 2 -q

clean:
	rm -rf $(VENV) results .pytest_cache
