# refarch: `make setup demo` runs the main job; `make test` runs every test.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup packer gitlab-ci-local wheel test unit lint bench demo clean

setup: $(VENV)/.installed packer gitlab-ci-local

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Packer 1.6.6 from Debian; the AMI tests build with it against the moto server.
packer:
	@command -v packer >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq packer >/dev/null; }

# gitlab-ci-local runs the pipeline `refarch ci gitlab` emits in tests/e2e/test_gitlab_pipeline.py
# (shell executor, a copy of the repo per job, made with rsync). Pinned: 4.74.0 and later crash
# at start on Node 20 (TypeError: ".union is not a function": Set.prototype.union is new in Node 22);
# 4.73.0 runs on Node 20. Installed into .tools/ (ignored by git), never globally.
GITLAB_CI_LOCAL_VERSION := 4.73.0
gitlab-ci-local:
	@command -v rsync >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq rsync >/dev/null; }
	@if command -v npm >/dev/null; then \
	  test -x .tools/node_modules/.bin/gitlab-ci-local && \
	    [ "$$(.tools/node_modules/.bin/gitlab-ci-local --version)" = $(GITLAB_CI_LOCAL_VERSION) ] || \
	    npm install --silent --no-audit --no-fund --prefix .tools gitlab-ci-local@$(GITLAB_CI_LOCAL_VERSION); \
	else echo "npm not found: tests/e2e/test_gitlab_pipeline.py will skip"; fi

# refarch is not on PyPI: `make wheel` builds dist/refarch-<version>-py3-none-any.whl, which CI
# jobs install ([ci] install in the live repo's refarch.toml; `sha256sum` gives install_sha256).
wheel: $(VENV)/.installed
	$(PY) -m pip wheel -q --no-deps -w dist .
	@sha256sum dist/refarch-*.whl

test: setup
	$(VENV)/bin/ruff check refarch tests bench examples
	$(VENV)/bin/ruff format --check refarch tests bench examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

unit: setup
	$(PY) -m pytest -q tests/unit

lint: setup
	$(VENV)/bin/ruff check refarch tests bench examples
	$(VENV)/bin/ruff format --check refarch tests bench examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) bench/discover.py
	$(PY) bench/apply_terraform.py
	$(PY) bench/scheduler.py
	$(PY) bench/bootstrap.py
	$(PY) bench/provider_cache.py
	$(PY) bench/stacks.py
	$(PY) bench/faults.py
	$(PY) bench/fanout.py
	$(PY) bench/gitlab_pipeline.py
	$(PY) bench/real_modules.py
	$(PY) bench/telemetry.py
	$(PY) bench/startup.py
	$(PY) bench/process.py

# The main job on an embedded AWS (moto on 127.0.0.1); records in .refarch/demo/.
demo: setup
	$(VENV)/bin/refarch demo --keep

clean:
	rm -rf $(VENV) .refarch .pytest_cache .mypy_cache .ruff_cache .tools dist
