# Two entry points for a new machine: `make quickstart` and `make test`.
# torch is pinned so pip takes the CPU wheel instead of the multi-GB CUDA build.
PYTHON ?= python3
PIP_INSTALL = $(PYTHON) -m pip install --quiet --disable-pip-version-check

.PHONY: install quickstart test fashion-mnist

install:
	$(PIP_INSTALL) torch==2.13.0 -e '.[test,neural-compressor]'

quickstart: install
	$(PYTHON) -m pipeline run recipes/quickstart.yaml

fashion-mnist: install
	$(PYTHON) -m pipeline run recipes/fashion-mnist.yaml

test: install
	$(PYTHON) -m pytest -q
