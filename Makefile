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

# pywb (replay tests) in its own virtualenv: it pins libraries the project does not.
$(VENV)/pywb/bin/pywb: $(BIN)/newsvault
	$(BIN)/python -m venv $(VENV)/pywb
	$(VENV)/pywb/bin/pip install --quiet 'pywb==2.10.0'
	touch $@

install: $(BIN)/newsvault

run: install
	$(BIN)/python -m scheduler.demo

# Two test workers (pytest-xdist), one test file each at a time: about half of
# the suite's time is waiting on crawls, daemons and servers, so two workers
# use the two cores. TEST_WORKERS=0 runs it in one process. Tests marked solo
# (the cluster's, on tight schedules) run afterwards on their own.
TEST_WORKERS ?= 2
test: install $(VENV)/pywb/bin/pywb
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not solo"
	$(BIN)/python -m pytest -q -m solo

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy newsvault spiders pipelines archive catalog scheduler samplesite web

clean:
	rm -rf var .pytest_cache
