# CareDesk: `make run` starts the embedded default, `make test` runs the whole suite, `make test-fast`
# leaves out the tests marked slow (browser, fault suite, child processes, fuzzing, accuracy).
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
HOST ?= 127.0.0.1
BIN := $(VENV)/bin

.PHONY: run test test-fast install install-test services audit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/caredesk serve --prepare --host $(HOST) --port $(PORT)

services:
	bash scripts/test-services.sh

# known vulnerabilities in the pinned dependencies fail the run (an unreachable audit service only warns)
audit: install-test
	$(BIN)/python scripts/audit_dependencies.py

# the quick tests on both cores (each xdist worker has its own databases), then the slow ones (real
# browser, child processes) on both cores a file per worker, then those that measure timing or kill
# servers on purpose (marked alone) one at a time; "no test selected" in any is fine
test: install-test services audit
	. var/test-services.env && { $(BIN)/python -m pytest -m "not slow" -n 2 --dist worksteal $(PYTEST_ARGS); rc=$$?; \
	    [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || exit $$rc; } && \
	  { $(BIN)/python -m pytest -m "slow and not alone" -n 2 --dist loadfile --durations=10 $(PYTEST_ARGS); rc=$$?; \
	    [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || exit $$rc; } && \
	  { $(BIN)/python -m pytest -m "slow and alone" --durations=10 $(PYTEST_ARGS); rc=$$?; \
	    [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || exit $$rc; }

# Redis and PostgreSQL are still needed; chromium is not (the browser tests are all marked slow)
test-fast: install-test
	CAREDESK_TEST_BROWSER=0 bash scripts/test-services.sh
	. var/test-services.env && $(BIN)/python -m pytest -m "not slow" -n auto --dist worksteal $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python bench/nlu_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache
