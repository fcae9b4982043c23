# Two commands for a new user: `make run` and `make test`. Both create the
# virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install bench lint clean

$(BIN)/newsvault: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/newsvault

run: install
	$(BIN)/python -m scheduler.demo

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy newsvault spiders pipelines archive scheduler samplesite

clean:
	rm -rf var .pytest_cache
