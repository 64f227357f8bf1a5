# Two entry points: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: run test lint format docs browser benchmarks clean synthetic-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/finsam-eval run --out results

lint: $(STAMP_TEST)
	$(BIN)/ruff check finsam_eval tests benchmarks
	$(BIN)/ruff format --check finsam_eval tests benchmarks

format: $(STAMP_TEST)
	$(BIN)/ruff format finsam_eval tests benchmarks
	$(BIN)/ruff check --fix finsam_eval tests benchmarks

# The report's browser test needs Debian's chromium; CI machines are root and reach Debian's
# package registry. Elsewhere the test finds a browser on PATH or skips with its reason.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "chromium not installed: the browser test will skip"; }

docs: $(STAMP_TEST)
	$(BIN)/mkdocs build --strict --site-dir site

test: $(STAMP_TEST) lint browser
	$(BIN)/python -m pytest -n 2 -q

# Regenerate the synthetic data bundled as package data (sources, built panel and its key).
synthetic-data: $(STAMP_RUN)
	$(BIN)/finsam-eval synthetic --out finsam_eval/synthetic/data

benchmarks: $(STAMP_TEST)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script; done

clean:
	rm -rf $(VENV) results site .pytest_cache
