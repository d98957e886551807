# Two entry points for a new machine: `make quickstart` and `make test`.
# torch is pinned so pip takes the CPU wheel instead of the multi-GB CUDA build.
#
# Where the project installs: into the active virtual environment or conda environment if there is
# one; otherwise into .venv here, made on first use. A distribution's own python3 (Debian 12,
# Ubuntu 24.04) refuses `pip install` outside a virtual environment (PEP 668), so installing into
# it directly is never tried. PYTHON=... overrides all of this.
ifneq ($(VIRTUAL_ENV)$(CONDA_PREFIX),)
PYTHON ?= python
else
VENV := .venv
PYTHON ?= $(VENV)/bin/python
endif
PIP_INSTALL = $(PYTHON) -m pip install --quiet --disable-pip-version-check

.PHONY: install quickstart test fashion-mnist mutation

install: $(VENV)
	$(PIP_INSTALL) torch==2.13.0 -e '.[test,neural-compressor,runtimes]'

quickstart: install
	$(PYTHON) -m pipeline run recipes/quickstart.yaml

fashion-mnist: install
	$(PYTHON) -m pipeline run recipes/fashion-mnist.yaml

test: install
	$(PYTHON) -m pytest -q

# Mutation testing of the safety checks (docs/testing.md): fails if any mutant survives.
mutation: install
	$(PYTHON) tests/mutation_score.py

# The project's own environment, when no other is active. Debian and Ubuntu ship venv separately.
.venv:
	python3 -m venv .venv || { rm -rf .venv; echo "error: python3 cannot make a virtual environment here. On Debian/Ubuntu: sudo apt install python3-venv, then run make again (or activate an environment of your own first)." >&2; exit 1; }
