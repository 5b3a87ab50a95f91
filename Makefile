# One-command set-up: `make demo` runs the ingest end to end on the bundled data; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?= $(CURDIR)/.genolake
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo demo-hail test ui benchmark benchmark-report benchmark-lookup benchmark-compress benchmark-engines deploy destroy env template clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The hail extra (hail 0.2.139 + pyspark 3.5, ~600 MB) runs the engine-equivalence tests and engine=hail.
	$(BIN)/pip install --quiet -e '.[test,hail]'
	# checkov pins boto3 1.35 and packaging<24, which genolake cannot use: it gets a venv of its own.
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet checkov==3.3.30
	touch $@

demo: install
	$(BIN)/genolake demo --home $(HOME_DIR) --fresh

# The same demo with the Hail engine on local Spark (one batch, a few minutes: Hail's place is a cluster).
demo-hail: install
	GENOLAKE_ENGINE=hail $(BIN)/genolake demo --home $(HOME_DIR)-hail --fresh

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

benchmark-engines: install
	$(BIN)/python benchmarks/engines.py

STAGE ?= dev

# AWS: one CloudFormation stack (deploy/README.md). Credentials come from the usual AWS environment/profile.
template: install
	$(BIN)/python deploy/template.py

deploy: install
	$(BIN)/python deploy/stack.py deploy --stage $(STAGE) $(if $(PARAMETERS),--parameters $(PARAMETERS))

destroy: install
	$(BIN)/python deploy/stack.py destroy --stage $(STAGE)

env: install
	$(BIN)/python deploy/stack.py env --stage $(STAGE) --out .env

clean:
	rm -rf $(VENV) .venv-checkov $(HOME_DIR) .pytest_cache
