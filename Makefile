# Inbox CRM: `make run` serves the product with demo data, `make test` runs the tests.
VENV   ?= .venv
PYTHON ?= python3
HOST   ?= 127.0.0.1
PORT   ?= 5000
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app wsgi

.PHONY: run test test-fast install install-test system-deps bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed setup.cfg
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

# Microsoft's published JSON schemas for the unified manifest, from the npm registry.
APP_MANIFEST := @microsoft/app-manifest@1.1.2
MANIFEST_SCHEMAS := .cache/app-manifest/package/build/json-schemas
$(MANIFEST_SCHEMAS):
	mkdir -p .cache/app-manifest
	cd .cache/app-manifest && npm pack --silent $(APP_MANIFEST) >/dev/null && tar xzf microsoft-app-manifest-*.tgz

install: $(VENV)/.installed

install-test: system-deps $(VENV)/.installed-test $(MANIFEST_SCHEMAS)

# Debian's chromium (for the browser tests) and postgresql (the tests start their own server).
system-deps:
	@bash scripts/install-test-deps

# Signing in as anyone with one click is for the embedded demo store only: on when no
# DATABASE_URL points elsewhere (and the app refuses it in production anyway).
DEMO_SIGN_IN := $(if $(DATABASE_URL),0,1)
STANDIN_PORT ?= 8765
STANDIN_URL := $(if $(DATABASE_URL),,http://127.0.0.1:$(STANDIN_PORT))

run: install
	$(FLASK) db upgrade
	$(FLASK) demo-data --if-empty
	@echo ""
	@echo "  Inbox CRM preview: http://$(HOST):$(PORT)/preview"
	@echo ""
	@# The job worker (webhooks, reminders, capture, the daily jobs) beside the server, on the embedded
	@# queue, and the stand-in for Microsoft and Google the preview's captured mailbox talks to (the
	@# embedded demo only); stopped with the server.
	@$(BIN)/python -m services.capture.standin --port $(STANDIN_PORT) & standin=$$!; \
	  INBOXCRM_CAPTURE_STANDIN_URL=$(STANDIN_URL) $(BIN)/huey_consumer addin.jobs.huey -w 2 -k thread -q & worker=$$!; \
	  trap "kill $$worker $$standin 2>/dev/null" EXIT INT TERM; \
	  INBOXCRM_CAPTURE_STANDIN_URL=$(STANDIN_URL) INBOXCRM_DEMO_SIGN_IN=$(DEMO_SIGN_IN) $(FLASK) run --host $(HOST) --port $(PORT)

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The lane to run while working: everything but the browser and the PostgreSQL runs, on both
# cores (pytest-xdist), in under three minutes. `make test` (and CI) still runs all of it.
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not browser and not postgres" -n 2 $(PYTEST_ARGS)

$(VENV)/.installed-bench: $(VENV)/.installed setup.cfg
	$(BIN)/pip install --quiet -e ".[bench]"
	touch $@

# Builds the scale-30 store once (bench/results/scale30.db), then measures the figures beside
# DuckDB on the same rows; prints JSON and writes bench/results/latest.json. BENCH_ARGS="--db URL".
# Then automatic capture on that store: 360 reps' 90-day backfill from the stand-in beside Core
# inserts of the same rows, the pane meanwhile, and push latency (CAPTURE_BENCH_ARGS="--per-rep 5").
# Then the import of 100,000 contacts and 1,000,000 activities beside Core bulk inserts, and the
# scale-30 build's time, on a fresh store (IMPORT_BENCH_ARGS="--db URL" for an empty PostgreSQL).
bench: $(VENV)/.installed-bench
	$(BIN)/python bench/reports.py $(BENCH_ARGS)
	$(BIN)/python bench/capture.py $(CAPTURE_BENCH_ARGS)
	$(BIN)/python bench/importing.py $(IMPORT_BENCH_ARGS)

clean:
	rm -rf $(VENV) instance test-artifacts .pytest_cache .cache *.egg-info
