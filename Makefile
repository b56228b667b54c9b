# fta — one entry point for operators and developers.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_PG_DIR := .cache/test-postgres
# Every test directory but tests/e2e, which `make test` runs first.
TEST_DIRS = $(filter-out tests/e2e/,$(sort $(wildcard tests/*/)))

.PHONY: up down logs venv lint typecheck images test test-unit test-fast testdb messages clean

up: ## Boot the whole stack (portal on http://127.0.0.1:8080)
	bash scripts/up.sh

down: ## Stop the stack (data volumes are kept)
	bash scripts/down.sh

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench deploy
	$(VENV)/bin/ruff format --check src tests bench deploy
	bash scripts/ensure-apt.sh shellcheck
	shellcheck scripts/*.sh images/*.sh images/*/*.sh deploy/*.sh bench/*.sh
	bash scripts/secret-scan.sh
	# The ECS/Fargate templates, offline with cfn-lint's bundled schemas (docs/scaling.md).
	$(VENV)/bin/cfn-lint deploy/ecs/*.yaml

typecheck: $(STAMP)
	$(VENV)/bin/mypy src

images: ## Build every image locally, without a registry
	bash images/build.sh

testdb: $(STAMP)
	# Tenant disks (loop-mounted ext4 images) are made with these in the tests too.
	bash scripts/ensure-apt.sh e2fsprogs mount
	# Invoice PDFs: the embedded font, and pdftotext/pdftoppm to check them.
	bash scripts/ensure-apt.sh poppler-utils fonts-dejavu-core
	# The browser tier: Debian's Chromium (Playwright drives it, no browser download), and
	# the script libraries the pages serve from Debian's packages.
	bash scripts/ensure-apt.sh chromium libjs-chart.js libjs-codemirror
	# The host's S3 client for backups off the host, as deploy/install.sh installs it.
	bash scripts/ensure-apt.sh python3-boto3
	bash scripts/test-postgres.sh start $(TEST_PG_DIR)

messages: $(STAMP) ## List the page texts into messages.pot, to translate them in the .po catalogs
	$(VENV)/bin/pybabel extract -F babel.cfg --no-location -o src/fta/portal/locale/messages.pot .

test-unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit

test: lint typecheck images testdb ## Install what is needed and run every test
	# The stack's end-to-end tests first, before any test of the session starts the worker's
	# sandbox (its settings and containers would share the host with `make up`'s).
	source $(TEST_PG_DIR)/env && $(VENV)/bin/pytest tests/e2e $(TEST_DIRS); rc=$$?; \
	  bash scripts/test-postgres.sh stop $(TEST_PG_DIR); exit $$rc

clean:
	bash scripts/test-postgres.sh stop $(TEST_PG_DIR) || true
	rm -rf $(VENV) .cache
