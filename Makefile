# Everything a developer or CI needs; see README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACKWALKER := .cache/minidump/package/bin/linux-x64/minidump_stackwalk

.PHONY: help setup run test unittest systemtest lint bench docs clean build dockerrun

help:
	@echo "make run    - the whole pipeline on 127.0.0.1 (collector :8000, local Bugsink :8001)"
	@echo "make test   - create .venv, install everything, run the whole test suite"
	@echo "make lint   - ruff"
	@echo "make bench  - benchmarks under bench/ (prints figures)"
	@echo "make docs   - regenerate docs/configuration.md from the code"

$(BIN)/.installed: requirements.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(STACKWALKER):
	bin/fetch_stackwalker.sh

setup: $(BIN)/.installed $(STACKWALKER)

run: setup
	$(BIN)/python -m testlib.onebox

test: setup
	$(BIN)/pytest -q -rs tests

unittest: setup
	$(BIN)/pytest -q tests/unittest

systemtest: setup
	$(BIN)/pytest -q tests/systemtest

lint: setup
	$(BIN)/ruff check antenna processor testlib tests bench

bench: setup
	$(BIN)/python -m bench.collector_bench
	$(BIN)/python -m bench.processor_bench
	$(BIN)/python -m bench.pipeline_latency

docs: setup
	$(BIN)/python -m antenna.configdoc > docs/configuration.md

build:
	docker build -t antenna-pipeline .

dockerrun:
	docker compose up

clean:
	rm -rf $(VENV) .cache data .pytest_cache
