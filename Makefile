# The two commands of the README: `make run` and `make test`. Everything else is a step of them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test setup lint typecheck check bench browser

run: setup
	$(BIN)/flask --app wsgi serve --host $(HOST) --port $(PORT)

test: setup browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Debian's Chromium for the browser tests (Playwright drives it; it downloads no browser).
browser:
	@scripts/ensure-chromium

lint: setup
	$(BIN)/ruff check bot tests bench migrations wsgi.py scripts

# mypy over bot/ (pyproject.toml: strict on the domain core, checked everywhere else).
typecheck: setup
	$(BIN)/mypy

check: setup
	$(BIN)/flask --app wsgi skills check

# wrk (Debian's package, installed as root once) drives bench/webhook.py.
bench: setup
	@scripts/ensure-wrk
	$(BIN)/python bench/webhook.py
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/fanout.py
