# The README's two commands are `make demo` and `make test`; .ci/run calls `make test`.
# Both install into a project virtual environment (.venv), never into the interpreter that
# runs them, so a distribution's own python3 under PEP 668 works as well as pyenv's.
# Another interpreter or place: `make test PYTHON=python3.12 VENV=.venv-3.12`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# The Rust build takes a minute or more the first time: maturin runs it in the foreground, so
# cargo's progress (`Compiling pyo3 ...`, and its progress bar on a terminal) shows, and pip,
# which maturin calls for the Python dependencies, is quiet (PIP_QUIET). Through pip alone the
# build would be silent unless pip ran with -v, which buries it under pip's own lines.
# `maturin develop` installs the package editable: the .so is built into python/fastsse/.
# pip >= 25.1 installs PEP 735 dependency groups (maturin develop --group dev asks it to).
MATURIN := $(PIP) install -q --upgrade 'pip>=25.1' 'maturin>=1.7,<2' && \
    VIRTUAL_ENV="$(abspath $(VENV))" PIP_QUIET=1 $(PY) -m maturin develop --release

.PHONY: demo test dev check bench venv rust fuzz wheel

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	    echo "error: '$(PYTHON)' not found: install Python >= 3.9, or name one with PYTHON=..." >&2; \
	    exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 9))' || { \
	    echo "error: fastsse needs Python >= 3.9; '$(PYTHON)' is $$($(PYTHON) -V 2>&1)." \
	        "Name another with PYTHON=..." >&2; \
	    exit 1; }
	@echo "creating the virtual environment $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV) || { \
	    rm -rf $(VENV); \
	    echo "error: '$(PYTHON) -m venv $(VENV)' failed (see above), so nothing was installed." >&2; \
	    echo "On Debian or Ubuntu, install the venv module: sudo apt-get install python3-venv" >&2; \
	    exit 1; }

venv: $(PY)

# maturin would try to download Rust when cargo is missing; say what to install instead.
rust:
	@command -v cargo >/dev/null 2>&1 || { \
	    echo "error: building fastsse needs a Rust toolchain, rustc >= 1.85 with cargo:" \
	        "install it from https://rustup.rs (distributions often package older ones)" >&2; \
	    exit 1; }

demo: $(PY) rust
	@echo "installing fastsse into $(VENV) (the Rust build takes a minute or two the first time)"
	@$(MATURIN) --extras aiohttp
	$(PY) -m fastsse demo

dev: $(PY) rust
	@echo "installing fastsse and its dev dependencies into $(VENV) (the Rust build takes a" \
	    "minute or two the first time)"
	@$(MATURIN) --group dev

# Every quality gate, then every test: Rust first (fast to fail), then Python.
test: dev wheel
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features python -- -D warnings
	cargo test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy --strict
	$(PY) scripts/unasync.py --check
	$(PY) -m pytest

# The release artefacts in dist/: one abi3 wheel for every CPython >= 3.9 on any Linux with glibc
# >= 2.17 (zig links against that baseline, whatever the build machine's glibc), and the sdist.
wheel: dev
	rm -rf dist
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m maturin build --release --zig \
	    --compatibility manylinux2014 --out dist
	$(PY) -m maturin sdist --out dist

bench: dev
	$(PY) -m pytest benches/ --benchmark-only --benchmark-timer=time.thread_time \
	    --benchmark-columns=min,median,ops,rounds

# Both fuzzers for FUZZ_SECONDS each: the Rust parser's chunking invariants (cargo-fuzz; its -Z
# flags need nightly, or RUSTC_BOOTSTRAP=1 on stable), then the binding against the pure parser
# (atheris). New inputs go to fuzz/corpus/ (not committed); a finding is kept in fuzz/seeds/,
# which `cargo test` and pytest replay.
FUZZ_SECONDS ?= 600
fuzz: $(PY)
	@$(PIP) install -q --upgrade 'pip>=25.1'
	$(PIP) install --progress-bar on --group dev --group fuzz -e .
	cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
	mkdir -p fuzz/corpus/chunking fuzz/corpus/python_parser fuzz/artifacts/python_parser
	RUSTC_BOOTSTRAP=1 cargo fuzz run chunking fuzz/corpus/chunking fuzz/seeds/chunking -- \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1
	$(PY) fuzz/python_parser.py fuzz/corpus/python_parser fuzz/seeds/python_parser \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 \
	    -artifact_prefix=fuzz/artifacts/python_parser/
