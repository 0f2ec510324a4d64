# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
# The system's Python (for uv), found before PATH puts the environment's tools first below.
PYTHON ?= $(shell command -v python3)
UV := $(PYTHON) -m uv
VENV := .venv
RUN := $(VENV)/bin/python
DATA := .data

export PLATFORM_MODE ?= dev
export DAGSTER_HOME ?= $(abspath $(DATA))/dagster
export PLATFORM_LAKE_ROOT ?= $(abspath $(DATA))/lake
export RUST_LOG ?= warn
export PYTHONPATH := $(CURDIR)
# The environment's tools (dbt, dagster) first, as in the image.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install demo dev soak test unit lint typecheck sqllint bench clean

DBT_MANIFEST := dbt/target/manifest.json

## install: uv (from PyPI if missing), the locked environment and the dbt manifest
# Compiled at install: where PYTHONDONTWRITEBYTECODE is set (this CI machine), every run and step
# process compiled Dagster, pyspark and Great Expectations again (GE's import: 11 s, compiled 4.4 s).
install: $(VENV)/.installed $(DBT_MANIFEST)

$(VENV)/.installed: pyproject.toml uv.lock $(wildcard native/*/pyproject.toml native/*/src/*/*)
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode
	@touch $@

# The dbt manifest the code location loads, prepared as dagster-dbt prescribes (`dagster dev` re-parses
# by itself); rebuilt whenever a file of the dbt project changes.
$(DBT_MANIFEST): $(VENV)/.installed dbt/dbt_project.yml dbt/profiles.yml $(shell find dbt/models dbt/macros dbt/tests -type f)
	$(VENV)/bin/dagster-dbt project prepare-and-package --file platform_assets/marts.py

## demo: the whole chain on embedded defaults, then row counts and KPIs
demo: install
	$(RUN) -m devstack.demo --data-dir $(DATA)

## dev: the Dagster UI with the broker, live simulator, sensors and schedules
dev: install
	$(RUN) -m devstack.dev --data-dir $(DATA)

## soak: 30 minutes of `make dev` watched and timed (queue, hand-launched runs, freshness, alerts)
soak: install
	bash devstack/install_browser.sh
	$(RUN) -m devstack.soak --data-dir $(DATA)/soak

# Chromium for the browser tests comes from Debian (devstack/install_browser.sh).
# Azurite (Azure Storage emulator) for the lake storage tests, pinned by .ci/package-lock.json.
NODE_TOOLS := .ci/node_modules/.installed

$(NODE_TOOLS): .ci/package.json .ci/package-lock.json
	@command -v npm >/dev/null || { echo "make test needs Node.js (>= 18) and npm for the Azurite emulator"; exit 1; }
	npm ci --prefix .ci --no-audit --no-fund --ignore-scripts
	@touch $@

## test: lint, type check and every test
test: install lint typecheck $(NODE_TOOLS)
	bash devstack/install_browser.sh
	$(RUN) -m pytest -p no:cacheprovider

## unit: the quick loop (pure rules, contracts, definitions snapshot, chart), under a minute
unit: install
	$(RUN) -m pytest -p no:cacheprovider -m unit

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

# sqlfluff with the dbt templater needs the lake the models read: the test builds a small one.
sqllint: install
	$(RUN) -m pytest -p no:cacheprovider tests/test_dbt_project.py -k sqlfluff

bench: install
	$(RUN) -m benchmarks

clean:
	rm -rf $(DATA) dbt/target dbt/logs
