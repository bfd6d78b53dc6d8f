# crowdwatch: `make demo` sets up and analyses the bundled clip; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench screenshots clean

setup: $(VENV)/.installed

# Everything installs from pyproject.toml; torch/torchvision are pinned to the releases these
# offline machines carry (see README, "Installation").
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,ray]'
	touch $@

demo: setup
	$(BIN)/crowdwatch demo --out out/demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/pytest -q

screenshots: setup
	CROWDWATCH_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/test_console_browser.py tests/test_venue_engine.py

bench: setup
	$(BIN)/python benchmarks/pets_counts.py
	$(BIN)/python benchmarks/pets_safety.py
	$(BIN)/python benchmarks/density_accuracy.py --ssd
	$(BIN)/python benchmarks/cameras_capacity.py --max-cameras 6

clean:
	rm -rf out .pytest_cache
