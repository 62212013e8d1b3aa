# Inbox CRM: `make run` serves the product with demo data, `make test` runs the tests.
VENV   ?= .venv
PYTHON ?= python3
HOST   ?= 127.0.0.1
PORT   ?= 5000
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app wsgi

.PHONY: run test install install-test system-deps bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test system-deps

# Debian's chromium (for the browser tests) and postgresql (the tests start their own server).
system-deps:
	@bash scripts/install-test-deps

run: install
	$(FLASK) db upgrade
	$(FLASK) demo-data --if-empty
	@echo ""
	@echo "  Inbox CRM preview: http://$(HOST):$(PORT)/preview"
	@echo ""
	$(FLASK) run --host $(HOST) --port $(PORT)

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/demo_data.py

clean:
	rm -rf $(VENV) instance test-artifacts .pytest_cache *.egg-info
