# Two commands that work on a fresh machine: `make sim` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Simulated seconds and real-time factor of `make sim`.
DURATION ?= 900
RTF ?= 10
PYTEST_ARGS ?=

.PHONY: venv sim test clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py setup.cfg package.xml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $(STAMP)

sim: $(STAMP)
	$(BIN)/asv sim run --duration $(DURATION) --rtf $(RTF)

# ROS tests run in a private network namespace so that DDS discovery cannot leave the
# machine (tools/isolated falls back to loopback-only discovery, with a warning, where
# namespaces are not allowed).
test: $(STAMP)
	tools/isolated $(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
