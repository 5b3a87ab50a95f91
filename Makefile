# One-command set-up: `make demo` runs the ingest end to end on the bundled data; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?= $(CURDIR)/.genolake
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install install-base check-lock lock demo demo-hail test ui benchmark benchmark-report benchmark-lookup benchmark-compress benchmark-engines benchmark-scale benchmark-cohort-engines benchmark-bookkeeping deploy destroy env template clean

# Every install comes from the lock (uv.lock, requirements/*.txt, all with hashes); `make lock` moves it.
TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_NO_PROGRESS := 1
# Installed modules are compiled once, at install: with PYTHONDONTWRITEBYTECODE set (as on some CI machines and
# containers) Python would otherwise compile every module it imports on every start, over a second for
# `genolake convert` of a whole genome (issue 17, item 7). The package's own sources are compiled after each sync.
export UV_COMPILE_BYTECODE := 1
COMPILE_PACKAGE = $(BIN)/python -m compileall -q genolake_assets

# uv itself, pinned and hash-checked (requirements/uv.txt), in a venv of its own.
$(UV): requirements/uv.txt
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --no-deps --require-hashes -r requirements/uv.txt

# The base install: what the demo and a lab's deployment need (no Hail, no test tools).
install-base: $(VENV)/.installed-base

$(VENV)/.installed-base: uv.lock pyproject.toml $(UV)
	$(UV) sync --locked --inexact --python $(PYTHON)
	$(COMPILE_PACKAGE)
	touch $@

# Everything the suite runs: base + test + hail extras (hail 0.2.139 + pyspark 3.5, ~600 MB, runs the
# engine-equivalence tests and engine=hail), and checkov in a venv of its own (it pins boto3 1.35 and
# packaging<24, which genolake cannot use).
install: $(VENV)/.installed

$(VENV)/.installed: uv.lock pyproject.toml requirements/checkov.txt $(UV)
	$(UV) sync --locked --all-extras --python $(PYTHON)
	$(COMPILE_PACKAGE)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) .venv-checkov
	$(UV) pip sync --quiet --require-hashes --python .venv-checkov/bin/python requirements/checkov.txt
	touch $@ $(VENV)/.installed-base

# Proves the environment is exactly the lock: nothing missing, nothing extra.
check-lock: install
	$(UV) sync --locked --all-extras --check --python $(PYTHON)
	$(UV) pip sync --dry-run --strict --require-hashes --python .venv-checkov/bin/python requirements/checkov.txt

# Moves every dependency to its newest allowed release, then runs the whole suite on the new set.
# A lock change lands only with this green.
lock: $(UV)
	$(UV) lock --upgrade --python $(PYTHON)
	$(UV) pip compile --quiet --upgrade --universal --generate-hashes --python-version 3.11 requirements/uv.in -o requirements/uv.txt
	$(UV) pip compile --quiet --upgrade --universal --generate-hashes --python-version 3.11 requirements/checkov.in -o requirements/checkov.txt
	$(UV) pip compile --quiet --upgrade --universal --generate-hashes --python-version 3.11 requirements/polars-bio.in -o requirements/polars-bio.txt
	$(MAKE) test

demo: install-base
	$(BIN)/genolake demo --home $(HOME_DIR) --fresh

# The same demo with the Hail engine on local Spark (one batch, a few minutes: Hail's place is a cluster).
demo-hail: install
	GENOLAKE_ENGINE=hail $(BIN)/genolake demo --home $(HOME_DIR)-hail --fresh

test: install
	$(BIN)/python -m pytest -q --durations=15

ui: install-base
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

benchmark-scale: install-base
	$(BIN)/python benchmarks/scale.py

# the cohort update in-process vs the Spark job on local Spark (needs the hail extra's pyspark: make install)
benchmark-cohort-engines: install
	$(BIN)/python benchmarks/cohort_engines.py

benchmark-bookkeeping: install-base
	$(BIN)/python benchmarks/bookkeeping.py

STAGE ?= dev

# AWS: one CloudFormation stack (deploy/README.md). Credentials come from the usual AWS environment/profile.
template: install-base
	$(BIN)/python deploy/template.py

deploy: install-base
	$(BIN)/python deploy/stack.py deploy --stage $(STAGE) $(if $(PARAMETERS),--parameters $(PARAMETERS))

destroy: install-base
	$(BIN)/python deploy/stack.py destroy --stage $(STAGE)

env: install-base
	$(BIN)/python deploy/stack.py env --stage $(STAGE) --out .env

clean:
	rm -rf $(VENV) .venv-checkov $(TOOLS) $(HOME_DIR) .pytest_cache
