# slawatch: `make run` starts the demo, `make test` runs every check. Both set themselves up on a fresh machine.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint unit bench clean

$(STAMP): pyproject.toml scripts/setup-system
	bash scripts/setup-system
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

## The demo: SQLite in ./data, the sample network (593 circuits), a replayed month, the API on 127.0.0.1:8080.
run: $(STAMP)
	$(VENV)/bin/slawatch demo

lint: $(STAMP)
	$(VENV)/bin/ruff check monitor collectors api tests benchmarks
	$(VENV)/bin/mypy

## Every test: lint, types, then pytest on SQLite and PostgreSQL (and real sockets where root).
test: $(STAMP)
	bash scripts/test

bench: $(STAMP)
	$(PY) benchmarks/bench_replay.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
