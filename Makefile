# Two commands do everything on a fresh machine with Python 3.11 and make:
#   make run    install the locked runtime dependencies into .venv and run the daily flow on bundled data
#   make test   install the locked dev dependencies into .venv and run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
UV_VERSION := 0.13.9

.PHONY: run test lint docs audit lock clean

$(PY):
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)

# Stamps: reinstall only when a lock file changes. --compile-bytecode: uv writes no .pyc by default, and with
# PYTHONDONTWRITEBYTECODE set (as on our workers) Python never caches them, so every process would compile
# Prefect, pandas and GX from source again (importing the flows: 4.4 s -> 1.8 s; Prefect's server: 6.9 -> 3.4 s).
# The editable install of this project gets none either: compileall does it (stale .pyc files are recompiled in
# memory after an edit, so only a fresh install matters: importing the flows 3.7 -> 3.1 s here).
# `eujp.prefect_server template`: the installed Prefect's migrated empty database, which a temporary Prefect
# server on a new PREFECT_HOME starts from instead of running its 115 migrations (~6 s of a ~10 s start).
$(VENV)/.runtime: requirements.lock pyproject.toml | $(PY)
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -m compileall -q eujp flows transforms
	$(PY) -m eujp.prefect_server template >/dev/null
	touch $@

$(VENV)/.dev: requirements-dev.lock pyproject.toml | $(PY)
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r requirements-dev.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -m compileall -q eujp flows transforms
	$(PY) -m eujp.prefect_server template >/dev/null
	touch $@ $(VENV)/.runtime

# The Data Docs assets no PyPI package ships (bootstrap-table, the dark theme: eujp/docs_assets.py), from the npm
# registry as pinned by assets/data-docs/package-lock.json, into the environment, where eujp reads them. Without
# npm the Data Docs index page needs the network to draw its tables (a warning says so).
DOCS_ASSETS := $(VENV)/share/eujp/docs-assets

$(DOCS_ASSETS)/.installed: assets/data-docs/package.json assets/data-docs/package-lock.json | $(PY)
	@if command -v npm >/dev/null; then \
		mkdir -p $(DOCS_ASSETS) && cp assets/data-docs/package.json assets/data-docs/package-lock.json $(DOCS_ASSETS)/ \
		&& cd $(DOCS_ASSETS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && touch .installed; \
	else echo "npm not found: the Data Docs assets of assets/data-docs/ are not installed (see docs/operations.md)"; fi

run: $(VENV)/.runtime $(DOCS_ASSETS)/.installed
	$(VENV)/bin/eujp run

test: $(VENV)/.dev $(DOCS_ASSETS)/.installed
	$(PY) -m pytest --durations=40

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check eujp flows transforms tests benchmarks

# Rewrite the generated sections of README.md and docs/warehouse.md (sources, tables, columns) from the
# declarations. `$(PY) -m eujp.docgen --check` only reports stale sections, as tests/test_docgen.py does.
# Then the values the suites share with the transforms (eujp.suites; `--check` as tests/unit/test_suites.py).
docs: $(VENV)/.runtime
	$(PY) -m eujp.docgen
	$(PY) -m eujp.suites

# Known-vulnerability audit of the locked dependencies (pip-audit; needs the vulnerability service): a known
# vulnerability fails; dependencies it could not check are listed and fail only with EUJP_AUDIT_STRICT=1.
audit: $(VENV)/.dev
	$(PY) .ci/dependency_audit.py requirements.lock requirements-dev.lock

# Re-resolve the locks (only when pyproject.toml's dependencies change).
lock: | $(PY)
	$(UV) pip compile pyproject.toml --python-version 3.11 --generate-hashes -q -o requirements.lock
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -q -o requirements-dev.lock

clean:
	rm -rf var .pytest_cache
