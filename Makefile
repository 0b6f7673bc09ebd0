# The README's two commands are `make demo` and `make test`; .ci/run calls `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: demo test dev check bench

demo:
	$(PIP) install --quiet .
	$(PYTHON) -m fastsse demo

dev:
	$(PIP) install --quiet -e '.[dev]'

# Every quality gate, then every test: Rust first (fast to fail), then Python.
test: dev
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features python -- -D warnings
	cargo test
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy --strict
	$(PYTHON) -m pytest

bench: dev
	$(PYTHON) -m pytest benches/ --benchmark-only --benchmark-columns=min,median,ops,rounds
