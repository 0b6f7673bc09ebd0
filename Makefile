# The README's two commands are `make demo` and `make test`; .ci/run calls `make test`.
# Both install into a project virtual environment (.venv), never into the interpreter that
# runs them, so a distribution's own python3 under PEP 668 works as well as pyenv's.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test dev check bench venv

$(PY):
	@$(PYTHON) -m venv $(VENV) || { \
	    echo "error: '$(PYTHON) -m venv' failed; on Debian or Ubuntu: apt-get install python3-venv" >&2; \
	    rm -rf $(VENV); exit 1; }

venv: $(PY)

demo: $(PY)
	@echo "building fastsse (Rust, about a minute the first time)..."
	$(PIP) install --progress-bar on '.[aiohttp]'
	$(PY) -m fastsse demo

dev: $(PY)
	@echo "installing the dev dependencies and building fastsse (Rust, about a minute the first time)..."
	$(PIP) install --progress-bar on -e '.[dev]'

# Every quality gate, then every test: Rust first (fast to fail), then Python.
test: dev
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features python -- -D warnings
	cargo test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy --strict
	$(PY) -m pytest

bench: dev
	$(PY) -m pytest benches/ --benchmark-only --benchmark-timer=time.thread_time --benchmark-columns=min,median,ops,rounds
