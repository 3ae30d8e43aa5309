# Everything runs from .venv, created from the pinned requirements on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
SPHINX_STRICT := -n -W --keep-going -q
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve html test test-browser lint linkcheck clean lock

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

serve: $(STAMP)  ## build the site, serve it on localhost, rebuild on every change
	$(BIN)/sphinx-autobuild $(SPHINX_STRICT) --host $(HOST) --port $(PORT) \
		--watch snippets --watch _ext --watch tests/harness.py \
		--ignore "$(CURDIR)/.venv/*" --ignore "$(CURDIR)/tests/*" \
		. _build/html

html: $(STAMP)  ## strict build (warnings are errors) into _build/html
	$(BIN)/python -m sphinx -b html $(SPHINX_STRICT) . _build/html

test: $(STAMP)  ## the whole suite, including a strict build of the site
	$(BIN)/python -m pytest

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
