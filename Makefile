# BreastNode: `make run` starts the node, `make test` runs every test. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.toml
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test venv test-deps system-deps viewer-deps demo-models lint typecheck pytest bench clean

run: venv
	$(BIN)/breastnode --config $(CONFIG) models init-demo --if-missing
	$(BIN)/breastnode --config $(CONFIG) serve

venv: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

test-deps: $(BIN)/.installed-test

$(BIN)/.installed-test: $(BIN)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Real peers for the integration tests: Debian's dcmtk, dicom3tools and Orthanc with its DICOMweb
# plugin (and curl, which the README walkthrough uses), and Chromium for the viewer tests.
system-deps:
	@missing=""; \
	for tool in storescu:dcmtk dciodvfy:dicom3tools Orthanc:orthanc curl:curl chromium:chromium; do \
	  command -v $${tool%%:*} >/dev/null || [ -x /usr/sbin/$${tool%%:*} ] || missing="$$missing $${tool##*:}"; \
	done; \
	[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || missing="$$missing orthanc-dicomweb"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  else \
	    echo "not root: cannot install$$missing; the tests that need them will skip"; \
	  fi; \
	fi
	@if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then \
	  if [ "$$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null; then \
	    pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n1) main start || true; \
	  fi; \
	fi

# The viewer the radiologists use, for the tests that open results in it: OHIF's prebuilt
# build from the npm registry, unpacked into .cache/ (Chromium comes with system-deps).
OHIF_VERSION := 3.13.2
OHIF_DIR := .cache/ohif-$(OHIF_VERSION)

viewer-deps: $(OHIF_DIR)/package/dist/index.html

$(OHIF_DIR)/package/dist/index.html:
	@if command -v npm >/dev/null; then \
	  mkdir -p $(OHIF_DIR) && cd $(OHIF_DIR) && npm pack --silent @ohif/app@$(OHIF_VERSION) >/dev/null \
	    && tar xzf ohif-app-$(OHIF_VERSION).tgz && rm ohif-app-$(OHIF_VERSION).tgz; \
	else \
	  echo "npm is missing: the viewer tests will skip"; \
	fi

# The demo models, trained once per version of their code into the per-user cache that
# `make run` (init-demo) fills too (~/.cache/breastnode/demo-models, or $BREASTNODE_DEMO_CACHE):
# a few minutes the first time, a second after that.
demo-models: venv
	$(BIN)/python -m models.synthetic.demo_models

lint: test-deps
	$(BIN)/ruff check node storage models harness tests bench
	$(BIN)/ruff format --check node storage models harness tests bench

typecheck: test-deps
	$(BIN)/mypy

# One test process per core (pytest-xdist), a test file's tests together in one of them
# (their module fixtures, such as an Orthanc, are started once); TEST_PROCESSES=0 runs
# the suite in this process.
TEST_PROCESSES ?= $(shell nproc 2>/dev/null || echo 2)

pytest: test-deps system-deps viewer-deps demo-models
	$(BIN)/pytest --durations=15 $(if $(filter 0,$(TEST_PROCESSES)),,-n $(TEST_PROCESSES) --dist loadfile)

test: lint typecheck pytest

bench: test-deps system-deps demo-models
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/infer.py
	$(BIN)/python bench/e2e.py
	$(BIN)/python bench/sweep.py
	$(BIN)/python bench/tls.py
	$(BIN)/python bench/structure.py
	$(BIN)/python bench/hostile_peers.py
	$(BIN)/python bench/kill_rounds.py
	$(BIN)/python bench/database_outage.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
