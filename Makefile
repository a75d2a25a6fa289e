# Everything the project needs is installed from here: the venv, the Kafka jars, helm, promtool
# and Debian's Chromium for the console's browser tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
KAFKA  := deploy/kafka-dev/kafka.sh
TOOLS  := deploy/tools/install.sh

.PHONY: install kafka tools browser test screenshots check format demo bench clean

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

# Playwright drives Debian's Chromium (its own browser download cannot be reached from here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: install kafka tools browser
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(BIN)/pytest

# The README's console screenshots (docs/console/), from a run of the browser test.
screenshots: install kafka browser
	DUGAA_SCREENSHOTS_TO_DOCS=1 $(BIN)/pytest tests/integration/test_console.py -q

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
