# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint contract screenshots

$(STAMP): pyproject.toml agent/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/watchkeeper serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app scripts tests bench agent
	$(BIN)/lint-imports

# Schemathesis against a running server: every status and body as /openapi.json declares.
contract: $(STAMP)
	$(BIN)/python scripts/contract_check.py

# The README's pictures of the dashboard, taken by the browser tests from a seeded store.
screenshots: $(STAMP)
	WATCHKEEPER_SCREENSHOTS=1 $(BIN)/pytest -q -n 0 -p no:cacheprovider tests/web/test_screenshots.py

test: lint
	$(BIN)/pytest
	$(MAKE) --no-print-directory contract
