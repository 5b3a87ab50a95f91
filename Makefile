# One-command set-up: `make demo` runs the ingest end to end on the bundled data; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?= $(CURDIR)/.genolake
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test ui benchmark benchmark-report benchmark-lookup benchmark-compress clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: install
	$(BIN)/genolake demo --home $(HOME_DIR) --fresh

test: install
	$(BIN)/python -m pytest -q

ui: install
	$(BIN)/python -m genolake_assets.ui_server --home $(HOME_DIR) --port 3000

benchmark: install
	$(BIN)/python benchmarks/convert.py

benchmark-report: install
	$(BIN)/python benchmarks/report_query.py

benchmark-lookup: install
	$(BIN)/python benchmarks/lookup.py

benchmark-compress: install
	$(BIN)/python benchmarks/compress.py

clean:
	rm -rf $(VENV) $(HOME_DIR) .pytest_cache
