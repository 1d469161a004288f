# Two commands on a fresh machine: `make run` (collect once on SQLite) and `make test`.
PYTHON ?= python3
CONFIG ?= config.toml
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run demo test lint format bench bench-web clean

$(STAMP): pyproject.toml setup.py monitor/_chunks.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

config.toml:
	cp config.example.toml config.toml
	@echo "Created config.toml from config.example.toml; edit it to watch your own sources."

# Collect every configured source once, then write last week's digest to outbox/ beside the
# config. Exit code 1 from collect means some sources failed (named in the summary): the run
# completed, so make does. The last lines say how to type the next command: the virtual
# environment is not on PATH, so a bare `omvarld` is "command not found".
run: $(STAMP) $(CONFIG)
	$(BIN)/omvarld --config $(CONFIG) db upgrade
	$(BIN)/omvarld --config $(CONFIG) collect --all || [ $$? -eq 1 ]
	$(BIN)/omvarld --config $(CONFIG) digest preview
	@echo
	@echo "omvarld is in $(BIN)/, which is not on PATH. Next, for example:"
	@echo "  $(BIN)/omvarld --config $(CONFIG) status"
	@echo "or, after '. $(BIN)/activate' in this shell: omvarld --config $(CONFIG) status"

# The same, offline, against bundled sample feeds served on loopback; it writes only into demo/.
demo: $(STAMP)
	$(BIN)/python demo/run.py

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Omvärld against lemon24/reader and a bare fetch loop on a local nginx (each pass in three
# interleaved rounds, the median judged), then claim timings, then what 50 alert rules cost a
# churn pass (issue 14: at most +5 %).
# Installs nginx (apt-get) and reader (bench/.venv-reader) when missing.
bench: $(STAMP)
	$(BIN)/python bench/collect_bench.py
	$(BIN)/python bench/collect_bench.py --alert-cost 10 --alert-rules 50

# `omvarld web` over a million generated posts on SQLite and PostgreSQL (OMVARLD_TEST_DATABASE_URL):
# search and home page p95, 50 clients for 30 s, the worker's peak RSS. The data is generated once
# (minutes) and kept: bench/.data for SQLite, a database of its own on the PostgreSQL server.
bench-web: $(STAMP)
	$(BIN)/python bench/web_bench.py

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
