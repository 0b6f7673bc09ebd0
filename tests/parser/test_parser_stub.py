"""The stub of the Rust module, python/fastsse/_fastsse.pyi, says exactly what the module has."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

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


def test_the_stub_shows_the_parsers_own_docstring():
    """IDEs read the stub, help() the binding: both document Parser's parameters alike."""
    stub = ast.parse(Path(_fastsse.__file__).with_name("_fastsse.pyi").read_text())
    (parser,) = [node for node in stub.body if getattr(node, "name", None) == "Parser"]
    assert isinstance(parser, ast.ClassDef)
    assert ast.get_docstring(parser) == inspect.cleandoc(_fastsse.Parser.__doc__)
    for name in inspect.signature(_fastsse.Parser).parameters:
        assert f"``{name}``" in _fastsse.Parser.__doc__
