# Every install step lives here: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install lint typecheck test demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy --strict messaging_async tests

test: lint typecheck
	$(BIN)/pytest

demo: install
	@echo "make demo: the sandbox gateway that the demo runs against arrives with issue 6;"
	@echo "until then, 'make test' exercises every path against in-process fakes."

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
