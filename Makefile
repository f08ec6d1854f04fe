# Every target creates the virtual environment it needs; nothing is assumed installed.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
EXTRAS ?= dev,training

.PHONY: system-deps run test test-unit test-integration test-e2e rl-test train lint typecheck bench migrate fmt clean venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)  ## start Troupe on the embedded default (nats-server from the wheel + SQLite)
	$(BIN)/troupe up

test: $(STAMP)  ## every test: unit, integration (real NATS + Postgres + SQLite), e2e
	$(BIN)/python -m pytest -p no:cacheprovider tests

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

rl-test: $(STAMP)  ## the agent, trainer and training actor
	$(BIN)/python -m pytest tests/unit/training tests/integration/training

train: $(STAMP)  ## train the default DQN configuration (about 6 minutes on 2 cores)
	$(BIN)/troupe train --config configs/training/default.toml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy actors schemas gateway troupe

bench: EXTRAS = dev,training,bench
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,training,bench]"
	$(BIN)/python -m bench

migrate: $(STAMP)
	$(BIN)/troupe migrate

system-deps:  ## promtool (Debian package prometheus) for the alert-rule tests; needs root or sudo
	@command -v promtool >/dev/null 2>&1 || { \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO="sudo -n"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
	  || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }; }

clean:
	rm -rf $(VENV) .troupe .mypy_cache .ruff_cache .pytest_cache
