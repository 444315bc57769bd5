# Developer and CI entry points. Every command runs through uv with --frozen: the lock file
# (uv.lock) changes only through `make lock`.

UV_VERSION := 0.13.8
# `python3 -m uv` works even when pip put the uv script in a directory that is not on PATH.
UV ?= $(if $(shell command -v uv 2>/dev/null),uv,python3 -m uv)
RUN := $(UV) run --frozen
PYTEST_ARGS ?=

.DEFAULT_GOAL := venv
.PHONY: help venv run test lint fmt proto lock

help:
	@echo "make venv   create/refresh .venv from uv.lock (installs uv $(UV_VERSION) if missing)"
	@echo "make run    start the service in embedded mode (in-process AWS emulator)"
	@echo "make test   run the whole test suite (PYTEST_ARGS='-k x' to narrow it)"
	@echo "make lint   ruff, import-linter contracts and buf lint"
	@echo "make fmt    format and auto-fix with ruff"
	@echo "make proto  regenerate client/src/usermgmt/v1 from proto/"
	@echo "make lock   update uv.lock after changing dependencies"
	@echo "make cluster  emulator + 3 instances behind Envoy on loopback (CLUSTER_ARGS=--help)"
	@echo "make bench  benchmark the server; writes .bench/ and README's table (BENCH_ARGS=--help)"

venv:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv==$(UV_VERSION)
	$(UV) sync --frozen --all-packages

run: venv
	$(RUN) usermgmt-server --embedded

test: venv
	$(RUN) pytest $(PYTEST_ARGS)

lint: venv
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports --no-logo
	$(RUN) buf lint proto

fmt: venv
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

proto: venv
	$(RUN) python client/tools/generate_protos.py

lock:
	$(UV) lock

# Local cluster: AWS emulator, 3 server instances and Envoy as their load balancer (Ctrl-C stops).
CLUSTER_ARGS ?=
.PHONY: cluster
cluster: venv
	$(RUN) python -m deploy.cluster $(CLUSTER_ARGS)

# Benchmark: emulator, server processes and load generators on this machine, a few minutes.
BENCH_ARGS ?= --profile Authenticate
.PHONY: bench
bench: venv
	$(RUN) python -m tests.bench --readme README.md $(BENCH_ARGS)
