# Everything runs from .venv, created from the pinned requirements on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
# One process more than the CPUs: in a parallel write Sphinx's main process resolves
# every page itself and hands them to -j minus one writers, so -j auto leaves a core
# idle while pages are written (measured: tests/benchmarks/bench_build.py --jobs).
SPHINX_JOBS := $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$((n + 1)))
SPHINX_STRICT_SERIAL := -n -W --keep-going -q
SPHINX_STRICT := $(SPHINX_STRICT_SERIAL) -j $(SPHINX_JOBS)
HOST ?= 127.0.0.1
PORT ?= 8000
# The editing loop keeps compiled bytecode (__pycache__, ignored by git). Container
# images often set PYTHONDONTWRITEBYTECODE=1; then every build and test process
# compiles the guide's modules again, and pytest rewrites every test module again.
unexport PYTHONDONTWRITEBYTECODE

# The suite on SQLAlchemy's other maintained line: its own lock and virtualenv.
LOCK_2_0 := requirements-sqlalchemy-2.0.txt
VENV_2_0 := .venv-sqlalchemy-2.0
STAMP_2_0 := $(VENV_2_0)/.installed-$(shell cksum < $(LOCK_2_0) | cut -d' ' -f1)

.PHONY: serve record record-stale record-all html dist test test-sqlalchemy-2.0 \
	test-postgres test-postgres-sqlalchemy-2.0 test-browser \
	lint linkcheck clean lock bench

# $(call install,VENV,LOCK): a virtualenv with exactly the pins of LOCK, from a
# Python the locks are made for (3.11.0+) that can create virtualenvs.
define install
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "make: $(PYTHON) is missing or older than Python 3.11, the oldest this site supports." \
	       "Install a Python 3.11+ and run: make PYTHON=python3.11 ..." >&2; exit 1; }
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  echo "make: $(PYTHON) cannot create a virtual environment (no ensurepip)." \
	       "On Debian/Ubuntu install the package python3-venv" \
	       "(for this interpreter: $$($(PYTHON) -c 'import sys; print("python3.%d-venv" % sys.version_info[1])'))," \
	       "e.g. apt-get install python3-venv" >&2; exit 1; }
	@# A working virtualenv of this same Python is kept (a new lock then installs only
	@# the pins that changed); none yet, or one of another Python, is (re)made.
	@if [ "$$($(1)/bin/python -c 'import sys; print(sys.version)' 2>/dev/null)" = \
	      "$$($(PYTHON) -c 'import sys; print(sys.version)')" ] \
	    && [ -x $(1)/bin/pip ]; then \
	  echo "keeping the virtualenv $(1) ($(PYTHON) made it)"; \
	else echo "$(PYTHON) -m venv $(1)" && $(PYTHON) -m venv $(1); fi
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check -r $(2) || { \
		echo "error: the pins of $(2) no longer install (see pip's message above)." \
			"Re-pin them with 'make lock', then run this target again." >&2; exit 1; }
	rm -f $(1)/.installed-* && touch $@
endef

$(STAMP): requirements.txt
	$(call install,$(VENV),requirements.txt)

$(STAMP_2_0): $(LOCK_2_0)
	$(call install,$(VENV_2_0),$(LOCK_2_0))

# The first build is parallel, as `make html`; each rebuild after an edit is serial:
# Sphinx forks its workers even for one changed page, which costs more than it
# saves (measured: tests/benchmarks/bench_build.py --edit-jobs). A first build that
# fails still serves: sphinx-autobuild shows the error and rebuilds on the fix. The
# record the pre-build step writes is not watched: each edit would else rebuild
# twice (the step has already re-recorded what the first rebuild renders).
serve: $(STAMP)  ## build the site, serve it on localhost, re-record and rebuild on every change
	@$(MAKE) --no-print-directory record-stale
	-$(BIN)/python -m sphinx -b html $(SPHINX_STRICT) . _build/html
	$(BIN)/sphinx-autobuild $(SPHINX_STRICT_SERIAL) --host $(HOST) --port $(PORT) \
		--pre-build "$(MAKE) --no-print-directory record-stale" \
		--watch snippets --watch implicit_io --watch _ext --watch guide_runtime \
		--ignore "$(CURDIR)/.venv/*" --ignore "$(CURDIR)/tests/*" \
		--ignore "$(CURDIR)/_build/*" --ignore "*/__pycache__" --ignore "*/__pycache__/*" \
		--ignore "$(CURDIR)/proofs/outputs/sqlite-sqlalchemy-2.1.json" \
		. _build/html

# What the pages show of each run is recorded by the suite (proofs/outputs/); the
# build only renders it. `make record` re-records the default configuration's
# (SQLite, SQLAlchemy 2.1); `make record-all` all four.
RECORD = -m pytest tests/examples/test_page_outputs.py --record-outputs -p no:randomly
record: $(STAMP)  ## re-record what the pages show of each run (SQLite, SQLAlchemy 2.1)
	GUIDE_LOCK_FILE=requirements.txt $(BIN)/python $(RECORD)

record-stale: $(STAMP)  ## re-record the page outputs whose record is missing or stale
	@$(BIN)/python -m guide_runtime.outputs || \
		GUIDE_LOCK_FILE=requirements.txt $(BIN)/python $(RECORD) --only-stale -n 0

record-all: $(STAMP) $(STAMP_2_0)  ## re-record on all four configurations
	GUIDE_LOCK_FILE=requirements.txt $(BIN)/python $(RECORD)
	GUIDE_LOCK_FILE=$(LOCK_2_0) $(VENV_2_0)/bin/python $(RECORD)
	GUIDE_LOCK_FILE=requirements.txt $(BIN)/python tools/postgres.py -- $(BIN)/python $(RECORD)
	GUIDE_LOCK_FILE=$(LOCK_2_0) $(VENV_2_0)/bin/python tools/postgres.py -- \
		$(VENV_2_0)/bin/python $(RECORD)

html: $(STAMP)  ## strict build (warnings are errors) into _build/html
	$(BIN)/python -m sphinx -b html $(SPHINX_STRICT) . _build/html

test: $(STAMP)  ## the whole suite, including a strict build of the site
	GUIDE_LOCK_FILE=requirements.txt $(BIN)/python -m pytest --record-proofs

test-sqlalchemy-2.0: $(STAMP_2_0)  ## the whole suite on the newest SQLAlchemy 2.0
	GUIDE_LOCK_FILE=$(LOCK_2_0) $(VENV_2_0)/bin/python -m pytest --record-proofs

# The whole suite on a throwaway PostgreSQL server through asyncpg (tools/postgres.py
# starts it on a free port, and stops and deletes it however the run ends).
test-postgres: $(STAMP)  ## the whole suite on a throwaway PostgreSQL server
	GUIDE_LOCK_FILE=requirements.txt $(BIN)/python tools/postgres.py -- \
		$(BIN)/python -m pytest --record-proofs

test-postgres-sqlalchemy-2.0: $(STAMP_2_0)  ## the same on the newest SQLAlchemy 2.0
	GUIDE_LOCK_FILE=$(LOCK_2_0) $(VENV_2_0)/bin/python tools/postgres.py -- \
		$(VENV_2_0)/bin/python -m pytest --record-proofs
# The published artifact: the built site, its manifest and nginx config, one tarball.
# Every page is written again (-a, from the stored environment): a page an incremental
# build did not rewrite would name an edited stylesheet by its old fingerprint.
dist: $(STAMP)  ## the site as a versioned tarball any static web server serves (_build/dist/)
	$(BIN)/python -m sphinx -b html -a $(SPHINX_STRICT) . _build/html
	$(BIN)/python tools/dist.py

# The artifact served by nginx under its published sub-path, in Debian's Chromium.
BROWSER_TESTS ?= tests/browser
test-browser: dist  ## every page in Chromium, served by nginx: axe, layout, search, 404
	.ci/install-chromium
	.ci/install-nginx
	$(BIN)/python -m pytest $(BROWSER_TESTS) -n 2 -p no:randomly

bench: $(STAMP)  ## measure the guard's overhead into guides/measured/ (commit it)
	$(BIN)/python tests/benchmarks/bench_guard.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

linkcheck: $(STAMP)
	$(BIN)/python -m sphinx -b linkcheck $(SPHINX_STRICT) . _build/linkcheck

lock:  ## re-pin every requirements*.txt from requirements.in, for Python 3.11.0+
	$(PYTHON) tools/lock.py

clean:
	rm -rf _build .pytest_cache
