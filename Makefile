# Two entry points for a new machine: `make quickstart` and `make test`.
# torch is pinned so pip takes the CPU wheel instead of the multi-GB CUDA build.
#
# Where the project installs: into the active virtual environment or conda environment if there is
# one; otherwise into .venv here, made on first use. A distribution's own python3 (Debian 12,
# Ubuntu 24.04) refuses `pip install` outside a virtual environment (PEP 668), so installing into
# it directly is never tried. PYTHON=... overrides all of this.
#
# What each target installs (sizes measured in README.md, "Set-up"):
#   quickstart, fashion-mnist, run: the light install (torch CPU, onnx, onnxruntime, torch-pruning, …);
#     `make run RECIPE=…` adds the optional parts that recipe asks for (a runtime, neural-compressor);
#   test, mutation: everything the tests need (all runtimes, neural-compressor, pytest, mutmut).
# pip runs only when pyproject.toml changed since the last install into that environment (a stamp
# file beside the environment says when it was).
ifneq ($(VIRTUAL_ENV)$(CONDA_PREFIX),)
PYTHON ?= python
STAMPS := $(or $(VIRTUAL_ENV),$(CONDA_PREFIX))/.edge-compress
else
VENV := .venv
PYTHON ?= $(VENV)/bin/python
STAMPS := $(VENV)/.edge-compress
endif
PIP_INSTALL = $(PYTHON) -m pip install --disable-pip-version-check --progress-bar on
RECIPE ?= recipes/quickstart.yaml

.PHONY: install install-all quickstart fashion-mnist run test mutation

install: $(STAMPS)-light
install-all: $(STAMPS)-all

$(STAMPS)-light: pyproject.toml | $(VENV)
	@echo "installing the light set (torch CPU, onnx, onnxruntime, torch-pruning; 1.2 GB on disk, once): pip's progress follows"
	$(PIP_INSTALL) torch==2.13.0 -e .
	@touch $@

$(STAMPS)-all: pyproject.toml | $(VENV)
	@echo "installing everything the tests need (every runtime, neural-compressor, Optuna, pytest, mutmut; 2.2 GB on disk, once): pip's progress follows"
	$(PIP_INSTALL) torch==2.13.0 -e '.[test,neural-compressor,runtimes,tune]'
	@touch $@ $(STAMPS)-light

quickstart: install
	$(PYTHON) -m pipeline run recipes/quickstart.yaml

fashion-mnist: install
	$(PYTHON) -m pipeline run recipes/fashion-mnist.yaml

# Any recipe: installs the optional parts it asks for and lacks, then runs it. make run RECIPE=recipes/runtimes.yaml
run: install
	$(PYTHON) -m pipeline recipe check $(RECIPE) --install
	$(PYTHON) -m pipeline run $(RECIPE)

test: install-all
	PYTHON=$(PYTHON) bash tests/system_packages.sh
	$(PYTHON) -m pytest -q

# Mutation testing of the safety checks (docs/testing.md): fails if any mutant survives.
mutation: install-all
	$(PYTHON) tests/mutation_score.py

# The project's own environment, when no other is active. Debian and Ubuntu ship venv separately.
.venv:
	python3 -m venv .venv || { rm -rf .venv; echo "error: python3 cannot make a virtual environment here. On Debian/Ubuntu: sudo apt install python3-venv, then run make again (or activate an environment of your own first)." >&2; exit 1; }
