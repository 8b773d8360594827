# Everything runs from the virtual environment in .venv/ at the repo root.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install broker browser test lint format readme bench bench-quick bench-full mock-bench report compare gate clean

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv/ and install every pinned dependency (and Redis and Chromium, see broker, browser)
	@$(MAKE) --no-print-directory broker browser

# The Celery variants' broker: Debian's redis-server (servers/README.md says why), installed when missing
# and apt-get is usable as root; elsewhere a note, and those two variants report the broker missing.
broker: ## install redis-server for the Celery variants when it is missing (Debian, as root)
	@if command -v redis-server >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's redis-server (the Celery variants' broker)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; \
	else \
		echo "note: no redis-server on PATH, so flask-celery and flask-celery-threads cannot run;" \
			"install Redis 7 (Debian/Ubuntu as root: make broker, or apt-get install redis-server)"; \
	fi

# The report's browser test: Debian's chromium (Playwright drives it; its own browser download is not used),
# installed the same way as the broker; elsewhere a note, and that test is skipped with one line.
browser: ## install chromium for the report's browser test when it is missing (Debian, as root)
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium (the report's browser test)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
		echo "note: no chromium on PATH, so the report's browser test is skipped;" \
			"install Chromium (Debian/Ubuntu as root: make browser, or apt-get install chromium)"; \
	fi

test: install ## run the test suite (real mock, servers and Locust on loopback), ~10 min here
	$(PY) -m pytest

lint: install ## ruff lint and format check, actionlint on the workflows
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/actionlint .github/workflows/*.yml examples/ci/*.yml

format: install ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install ## run the default sweep (about 8 minutes here) into results/<timestamp>/
	$(PY) -m loadtests sweep --preset default

bench-quick: install ## run the quick sweep (about 2 minutes, used by CI)
	$(PY) -m loadtests sweep --preset quick

bench-full: install ## run every variant and scenario, both load models (for publishing; about 90 minutes here)
	$(PY) -m loadtests sweep --preset full

mock-bench: install ## benchmark the mock itself: 2,000 concurrent calls at a 1 s profile
	$(PY) -m loadtests.driver.mockbench

RUN ?= results/latest
readme: install ## rewrite the README's verdict block from results/reference/verdict.json
	$(PY) -m loadtests readme

report: install ## render charts, report and verdict for RUN (default results/latest)
	$(PY) -m loadtests report $(RUN)

BASELINE ?= results/reference
CURRENT ?= results/latest
compare: install ## compare CURRENT against BASELINE; exit 1 on a regression
	$(PY) -m loadtests compare $(BASELINE) $(CURRENT)

BASE ?=
HEAD ?= HEAD
gate: install ## measure BASE (default: merge base with origin/main) and HEAD interleaved; exit 1 on a regression
	$(PY) -m loadtests gate $(BASE) $(HEAD)

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
