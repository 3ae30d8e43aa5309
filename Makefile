# Everything runs from .venv, created from the pinned requirements on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
SPHINX_STRICT := -n -W --keep-going -q
HOST ?= 127.0.0.1
PORT ?= 8000

# The suite on SQLAlchemy's other maintained line: its own lock and virtualenv.
LOCK_2_0 := requirements-sqlalchemy-2.0.txt
VENV_2_0 := .venv-sqlalchemy-2.0
STAMP_2_0 := $(VENV_2_0)/.installed-$(shell cksum < $(LOCK_2_0) | cut -d' ' -f1)

.PHONY: serve html test test-sqlalchemy-2.0 test-browser lint linkcheck clean lock

# $(call install,VENV,LOCK): a virtualenv with exactly the pins of LOCK.
define install
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check -r $(2) || { \
		echo "error: the pins of $(2) no longer install (see pip's message above)." \
			"Re-pin them with 'make lock', then run this target again." >&2; exit 1; }
	rm -f $(1)/.installed-* && touch $@
endef

$(STAMP): requirements.txt
	$(call install,$(VENV),requirements.txt)

$(STAMP_2_0): $(LOCK_2_0)
	$(call install,$(VENV_2_0),$(LOCK_2_0))

serve: $(STAMP)  ## build the site, serve it on localhost, rebuild on every change
	$(BIN)/sphinx-autobuild $(SPHINX_STRICT) --host $(HOST) --port $(PORT) \
		--watch snippets --watch _ext --watch tests/harness.py \
		--ignore "$(CURDIR)/.venv/*" --ignore "$(CURDIR)/tests/*" \
		. _build/html

html: $(STAMP)  ## strict build (warnings are errors) into _build/html
	$(BIN)/python -m sphinx -b html $(SPHINX_STRICT) . _build/html

test: $(STAMP)  ## the whole suite, including a strict build of the site
	GUIDE_LOCK_FILE=requirements.txt $(BIN)/python -m pytest --record-proofs

test-sqlalchemy-2.0: $(STAMP_2_0)  ## the whole suite on the newest SQLAlchemy 2.0
	GUIDE_LOCK_FILE=$(LOCK_2_0) $(VENV_2_0)/bin/python -m pytest --record-proofs

test-browser: html  ## every page in Debian's Chromium: axe, layout, search, copy buttons
	.ci/install-chromium
	$(BIN)/python -m pytest tests/browser -n 2 -p no:randomly

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

linkcheck: $(STAMP)
	$(BIN)/python -m sphinx -b linkcheck $(SPHINX_STRICT) . _build/linkcheck

lock:  ## re-pin requirements.txt from requirements.in
	rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet -r requirements.in
	$(VENV)-lock/bin/pip freeze --exclude-editable > requirements.txt && rm -rf $(VENV)-lock

clean:
	rm -rf _build .pytest_cache
