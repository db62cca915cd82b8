# Loyalink: `make demo` runs the portal on embedded defaults; `make test` passes the whole suite.
# Both set everything up on a fresh machine that has python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
DEMO := LOYALINK_ENV=demo $(BIN)/flask --app demo:create_demo_app
POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install demo test test-sqlite test-postgres lint format bench vendor-htmx clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(DEMO) db upgrade
	$(DEMO) demo-seed
	$(DEMO) run --host 127.0.0.1 --port 5000

# Lint, the whole suite on SQLite, then every database test again on PostgreSQL.
test: lint test-sqlite test-postgres

test-sqlite: $(STAMP)
	$(BIN)/python -m pytest

test-postgres: $(STAMP)
	$(BIN)/python -m pytest -m database --postgres-url=$(POSTGRES_URL)

# Benchmarks print ratios against a baseline measured in the same run (see bench/README.md).
bench: $(STAMP)
	$(BIN)/python bench/rules.py --postgres-url=$(POSTGRES_URL)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# htmx is vendored from the npm package htmx.org (no CDN); run this to upgrade it.
vendor-htmx:
	cd $$(mktemp -d) && npm pack --silent htmx.org@2 && tar xzf htmx.org-*.tgz && \
	  v=$$(node -p "require('./package/package.json').version") && \
	  cp package/dist/htmx.min.js $(CURDIR)/app/static/vendor/htmx-$$v.min.js && \
	  echo "vendored htmx $$v: update base.html"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
