# Everything the project needs is installed from here: the venv, the Kafka jars, helm, promtool,
# Debian's Chromium for the console's browser tests and the libraries of the README's Node and Go
# receivers (npm's jose and standardwebhooks, Go's go-jose and standard-webhooks).
# Python packages install from the lock files in requirements/ (exact versions, with hashes);
# `make lock` makes them anew from pyproject.toml, keeping every pin it can; `make lock UPGRADE=NAME`
# moves NAME (and only what it needs) to its newest version.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCKS  := requirements
COMPILE = $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade-package $(UPGRADE))
KAFKA  := deploy/kafka-dev/kafka.sh
TOOLS  := deploy/tools/install.sh
RECEIVERS := tests/receivers/install.sh

.PHONY: install lock kafka tools browser receivers test screenshots check format demo bench clean

install: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml $(LOCKS)/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCKS)/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# One lock per install: the image (runtime), development and CI (dev), the benchmark (bench),
# and the benchmark's Quix Streams contender in a venv of its own (quix: quixstreams pins an
# older confluent-kafka than the dispatcher needs).
lock:
	test -x $(BIN)/pip-compile || ($(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet pip-tools)
	$(COMPILE) -o $(LOCKS)/runtime.lock pyproject.toml
	$(COMPILE) --extra dev -o $(LOCKS)/dev.lock pyproject.toml
	$(COMPILE) --extra dev --extra bench -o $(LOCKS)/bench.lock pyproject.toml
	$(COMPILE) -o $(LOCKS)/quix.lock $(LOCKS)/quix.in

kafka:
	bash $(KAFKA) fetch

tools:
	bash $(TOOLS)

# Playwright drives Debian's Chromium (its own browser download cannot be reached from here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The README's Node and Go receiver snippets run in the tests with the library versions pinned in
# tests/receivers (package-lock.json, go.sum); this fails, naming it, when node, npm or go is missing.
receivers:
	bash $(RECEIVERS)

# The suite on TEST_WORKERS processes (pytest-xdist; a file's tests stay together, each process
# starts a broker of its own), then the browser tests in a session of their own: Playwright's
# sync API keeps an event loop in the main thread until its session ends. Both always run.
TEST_WORKERS ?= 2
test: install kafka tools browser receivers
	@export PATH="$(CURDIR)/.tools/bin:$$PATH"; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not browser"; suite=$$?; \
	$(BIN)/pytest -m browser; browser=$$?; \
	test $$suite -eq 0 -a $$browser -eq 0

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
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCKS)/bench.lock
	test -x .venv-quix/bin/python || $(PYTHON) -m venv .venv-quix
	.venv-quix/bin/python -m pip install --quiet --require-hashes -r $(LOCKS)/quix.lock
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-quix .cache .tools .pytest_cache .mypy_cache .ruff_cache
