# Two commands on a fresh machine: `make run` (collect once on SQLite) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run demo test lint format bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

config.toml:
	cp config.example.toml config.toml
	@echo "Created config.toml from config.example.toml; edit it to watch your own sources."

# Collect every configured source once, then write last week's digest to outbox/. Exit code 1
# from collect means some sources failed (named in the summary): the run completed, so make does.
run: $(STAMP) config.toml
	$(BIN)/omvarld --config config.toml db upgrade
	$(BIN)/omvarld --config config.toml collect --all || [ $$? -eq 1 ]
	$(BIN)/omvarld --config config.toml digest preview

# The same, offline, against bundled sample feeds served on loopback.
demo: $(STAMP)
	$(BIN)/python demo/run.py

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Omvärld against lemon24/reader and a bare fetch loop on a local nginx, then claim timings.
# Installs nginx (apt-get) and reader (bench/.venv-reader) when missing.
bench: $(STAMP)
	$(BIN)/python bench/collect_bench.py

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
