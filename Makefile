# Every install step lives here: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS := .[dev,sandbox,cli,fast,postgres]
# `make test` runs the suite on each of these (one venv each, .venv-3.12 ...); lint and mypy
# run once, in .venv. `make test TEST_PYTHONS=3.12` runs one.
TEST_PYTHONS ?= 3.11 3.12 3.13

.PHONY: install tools lint typecheck docs test demo soak bench clean FORCE

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,sandbox,cli,fast,docs,postgres]'  # the suite's extras, and the docs'
	touch $@

install: $(STAMP)

# Programs the tests run as real processes, from Debian's packages where missing: PHP with its
# curl extension (docs/testing.md's PHP example runs against a sandbox process), and PostgreSQL's
# server binaries (the suite starts a throwaway cluster for PostgresLedger and the workers; its
# package also creates the `postgres` user the cluster runs as when the suite runs as root).
tools:
	@php -r 'exit(function_exists("curl_init") ? 0 : 1);' 2>/dev/null \
		|| { apt-get update -qq && apt-get install -y -qq php-cli php-curl >/dev/null; } \
		|| echo "php-cli/php-curl could not be installed: the PHP example test skips (fails under CI)"
	@{ command -v initdb || ls /usr/lib/postgresql/*/bin/initdb \
		|| { command -v pg_config && test -x "$$(pg_config --bindir)/initdb"; }; } >/dev/null 2>&1 \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } \
		|| echo "postgresql could not be installed: the PostgreSQL tests skip (fail under CI)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy --strict messaging_async tests

# The documentation site; --strict turns every warning (a broken link, a reference to a name
# that no longer exists) into a failure, so `make test` catches them.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint typecheck docs tools $(addprefix pytest-,$(TEST_PYTHONS))

# Prints the interpreter for Python $1 (3.12): pyenv's newest 3.12.x, installed by pyenv when
# it has none; else python3.12 on PATH; nothing when there is neither.
FIND_PYTHON = \
	if command -v pyenv >/dev/null 2>&1; then \
		full=$$(pyenv latest "$$1" 2>/dev/null) \
			|| { pyenv install --skip-existing "$$1" >&2 && full=$$(pyenv latest "$$1"); } \
			|| exit 0; \
		echo "$$(pyenv root)/versions/$$full/bin/python"; \
	elif command -v "python$$1" >/dev/null 2>&1; then \
		command -v "python$$1"; \
	fi

# The suite on one Python version, in its own venv, reinstalled when pyproject.toml changes.
pytest-%: FORCE
	@python=$$(sh -c '$(FIND_PYTHON)' find-python $*); \
	if [ -z "$$python" ] || ! "$$python" -c pass 2>/dev/null; then \
		echo "*** Python $* SKIPPED: not on this machine (no pyenv, or pyenv could not install it)"; \
		exit 0; \
	fi; \
	venv=.venv-$*; \
	if [ ! -f $$venv/.installed ] || [ pyproject.toml -nt $$venv/.installed ]; then \
		echo "=== installing $$venv ($$python)"; \
		"$$python" -m venv $$venv \
			&& $$venv/bin/python -m pip install --quiet --upgrade pip \
			&& $$venv/bin/python -m pip install --quiet -e '$(EXTRAS)' \
			&& touch $$venv/.installed || exit 1; \
	fi; \
	echo "=== pytest on Python $$($$venv/bin/python -c 'import platform; print(platform.python_version())')"; \
	$$venv/bin/pytest

# A bulk blast and webhook round trip against the built-in sandbox, on loopback ports.
demo: install
	$(BIN)/messaging-async demo

# Benchmarks (about half an hour on 2 cores): tables into benchmarks/RESULTS.md. webhooks.py
# drives each webhook server at saturation with wrk (Debian's package), installed when missing.
bench: install
	@command -v wrk >/dev/null \
		|| { apt-get update -qq \
			&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } \
		|| echo "wrk could not be installed: webhooks.py stops (--driver aiohttp runs without it)"
	cd benchmarks && ../$(BIN)/python blast.py && ../$(BIN)/python layers.py \
		&& ../$(BIN)/python sdk_layer.py && ../$(BIN)/python whatsapp.py \
		&& ../$(BIN)/python memory.py && ../$(BIN)/python webhook_parsing.py \
		&& ../$(BIN)/python webhooks.py && ../$(BIN)/python workers.py \
		&& ../$(BIN)/python otp_lane.py && ../$(BIN)/python ledger.py \
		&& ../$(BIN)/python ledger_blast.py && ../$(BIN)/python ledger_memory.py

# About three minutes: 1,000,000 recipients under random faults, both backends; figures into
# benchmarks/RESULTS.md.
soak: install
	$(BIN)/python benchmarks/soak.py

clean:
	rm -rf $(VENV) site $(addprefix .venv-,$(TEST_PYTHONS)) .mypy_cache .pytest_cache .ruff_cache

FORCE:
