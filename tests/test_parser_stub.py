"""The stub of the Rust module, python/fastsse/_fastsse.pyi, says exactly what the module has."""

from __future__ import annotations

import inspect
import subprocess
import sys

from fastsse import _fastsse


def test_stubtest_finds_nothing():
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "fastsse._fastsse"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 module" in result.stdout


def test_the_shown_default_size_is_the_real_one():
    """The binding shows max_event_size's default in a hand-written text signature."""
    shown = inspect.signature(_fastsse.Parser).parameters["max_event_size"].default
    assert shown == _fastsse.DEFAULT_MAX_EVENT_SIZE
    assert _fastsse.Parser().max_event_size == shown
