# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rs-installed
# GPU users: leave empty to take torch 2.13.0 from PyPI (the CUDA build on Linux x86_64), or
# name a PyTorch wheel index to choose the CUDA (or CPU) variant; see docs/getting-started/laptop.md "GPU".
TORCH_INDEX_URL ?=
TORCH_SPEC := torch==2.13.0

export MLFLOW_DISABLE_TELEMETRY ?= true
export HDF5_USE_FILE_LOCKING ?= FALSE

.PHONY: demo test lint docs docs-check lock clean-venv bytecode

$(STAMP): pyproject.toml requirements/lock.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	@# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/python -c "import torch" 2>/dev/null || \
	  $(BIN)/python -m pip install -q $(TORCH_SPEC) $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(BIN)/python -m pip install -q -c requirements/lock.txt -e ".[dev]"
	@touch $@

DEMO_DATA := data/debug

# Every Ray process imports rs; where Python may not write bytecode (PYTHONDONTWRITEBYTECODE=1, as in many
# containers) each would compile it from source again (~60-90 ms a process). Only stale files are redone.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q rs

demo: $(STAMP) bytecode
	$(BIN)/rs config show configs/train/debug.yaml
	@test -f $(DEMO_DATA)/train.h5 || $(BIN)/rs data generate --config configs/data/debug.yaml --out $(DEMO_DATA)
	$(BIN)/rs data validate $(DEMO_DATA)/train.h5 $(DEMO_DATA)/val.h5 $(DEMO_DATA)/test.h5
	$(BIN)/rs data inspect $(DEMO_DATA)/val.h5 --sim 1 --png $(DEMO_DATA)/val_sim1.png | tail -n 3
	$(BIN)/rs train configs/train/debug.yaml --set tracking.mlflow.local=true
	$(BIN)/rs eval --checkpoint runs/debug
	@echo "next: runs/debug holds config.resolved.yaml, provenance.json, checkpoint_*/ and eval/test/{summary.json,plots/};"
	@echo "      browse the MLflow run: $(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/runs/mlflow.db"
	@echo "      rerun 'make demo' to resume it, or 'rs train configs/train/debug_diffusion.yaml' for diffusion."

test: $(STAMP) bytecode
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check rs tests

# The documentation site (site/index.html): the references regenerated from the code, then a strict build
# (a broken link, anchor or missing page fails it). docs-check fails when a committed reference is stale.
docs: $(STAMP)
	$(BIN)/python docs/gen_ref.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

docs-check: $(STAMP)
	$(BIN)/python docs/gen_ref.py --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Refresh requirements/lock.txt from the current venv (after changing pyproject pins).
lock:
	@test -x $(BIN)/python || { echo 'no .venv: run make test first'; exit 1; }
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -E "^(pip|setuptools|wheel)==" \
	  | sed -E 's/^torch==([0-9.]+)\+.*/torch==\1/' > requirements/lock.txt

clean-venv:
	rm -rf $(VENV)
