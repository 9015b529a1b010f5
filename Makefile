# Every install step lives here: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install tools lint typecheck docs test demo soak bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,sandbox,cli,fast,docs]'
	touch $@

install: $(STAMP)

# Programs the tests run as real processes, from Debian's packages where missing: PHP with its
# curl extension (docs/testing.md's PHP example runs against a sandbox process).
tools:
	@php -r 'exit(function_exists("curl_init") ? 0 : 1);' 2>/dev/null \
		|| { apt-get update -qq && apt-get install -y -qq php-cli php-curl >/dev/null; } \
		|| echo "php-cli/php-curl could not be installed: the PHP example test skips (fails under CI)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy --strict messaging_async tests

# The documentation site; --strict turns every warning (a broken link, a reference to a name
# that no longer exists) into a failure, so `make test` catches them.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint typecheck docs tools
	$(BIN)/pytest

# A bulk blast and webhook round trip against the built-in sandbox, on loopback ports.
demo: install
	$(BIN)/messaging-async demo

# Benchmarks (about half an hour on 2 cores): tables into benchmarks/RESULTS.md.
bench: install
	cd benchmarks && ../$(BIN)/python blast.py && ../$(BIN)/python layers.py \
		&& ../$(BIN)/python sdk_layer.py && ../$(BIN)/python whatsapp.py \
		&& ../$(BIN)/python memory.py && ../$(BIN)/python webhook_parsing.py \
		&& ../$(BIN)/python webhooks.py

# About three minutes: 1,000,000 recipients under random faults, both backends; figures into
# benchmarks/RESULTS.md.
soak: install
	$(BIN)/python benchmarks/soak.py

clean:
	rm -rf $(VENV) site .mypy_cache .pytest_cache .ruff_cache
