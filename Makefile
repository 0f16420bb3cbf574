# refarch: `make setup demo` runs the main job; `make test` runs every test.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup packer test unit lint bench demo clean

setup: $(VENV)/.installed packer

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
	$(PY) bench/startup.py
	$(PY) bench/process.py

# The main job on an embedded AWS (moto on 127.0.0.1); records in .refarch/demo/.
demo: setup
	$(VENV)/bin/refarch demo --keep

clean:
	rm -rf $(VENV) .refarch .pytest_cache .mypy_cache .ruff_cache
