# Everything the project needs is installed from here: the venv, the Kafka jars, helm and promtool.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
KAFKA  := deploy/kafka-dev/kafka.sh
TOOLS  := deploy/tools/install.sh

.PHONY: install kafka tools test check format demo bench clean

install: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

kafka:
	bash $(KAFKA) fetch

tools:
	bash $(TOOLS)

test: install kafka tools
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(BIN)/pytest

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: install kafka
	$(BIN)/dispatcher demo

bench: install kafka
	bash bench/install.sh
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .cache .tools .pytest_cache .mypy_cache .ruff_cache
