# Two commands that work on a fresh machine: `make sim` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make sim DURATION=<simulated s> RTF=<real-time factor>`; unset: sim.launch.xml's defaults.
DURATION ?=
RTF ?=
PYTEST_ARGS ?=

.PHONY: venv sim test clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py setup.cfg package.xml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $(STAMP)

# Headless, in a private network namespace like the tests; to watch it live in RViz or
# Foxglove on this machine run `.venv/bin/asv sim run` directly (discovery stays on localhost).
sim: $(STAMP)
	tools/isolated $(BIN)/asv sim run $(if $(DURATION),--duration $(DURATION)) $(if $(RTF),--rtf $(RTF))

# ROS tests run in a private network namespace so that DDS discovery cannot leave the
# machine (tools/isolated falls back to loopback-only discovery, with a warning, where
# namespaces are not allowed).
test: $(STAMP)
	tools/isolated $(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
