"""User code that names fastsse's public types passes ``mypy --strict``.

The snippets are what a user writes: an overflow policy read from configuration, handlers typed
with the exported aliases. A deliberately wrong snippet shows that mypy does check them.
"""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path
from typing import Any

import fastsse
import pytest
from fastsse import testing
from fastsse._pure import PureParser
from mypy import api

USER_CODE = """
import asyncio
from typing import cast, get_args

import fastsse

DEFAULT_POLICY: fastsse.Overflow = "drop_oldest"

def policy_from_config(name: str) -> fastsse.Overflow:
    known = name in get_args(fastsse.Overflow)
    return cast(fastsse.Overflow, name) if known else DEFAULT_POLICY

async def on_event(event: fastsse.Event) -> None:
    await asyncio.sleep(0)

def count(event: fastsse.Event) -> int:  # a sync handler's result is ignored
    return len(event.data)

def report(event: fastsse.Event, error: Exception) -> None:
    print(event.id, error)

handlers: list[fastsse.Handler] = [on_event, count, print]
on_error: fastsse.ErrorHandler = report

def build(stream: fastsse.AsyncEventStream, overflow: fastsse.Overflow) -> fastsse.Consumer:
    return fastsse.Consumer(stream, handlers[0], overflow=overflow, on_error=on_error)

build(fastsse.AsyncEventStream("http://127.0.0.1:9/"), policy_from_config("block"))
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def check(code: str, tmp_path: Path, cache: Path) -> tuple[str, int]:
    """mypy --strict on ``code`` as a user's module, with no project configuration."""
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    (tmp_path / "user.py").write_text(textwrap.dedent(code))
    out, err, status = api.run(
        [
            "--strict",
            "--no-error-summary",
            f"--cache-dir={cache}",
            f"--config-file={tmp_path / 'mypy.ini'}",
            str(tmp_path / "user.py"),
        ]
    )
    return out.replace(str(tmp_path / "user.py"), "user.py") + err, status


def test_user_code_with_the_public_types_passes_mypy_strict(tmp_path: Path, cache: Path) -> None:
    out, status = check(USER_CODE, tmp_path, cache)
    assert (out, status) == ("", 0)


def test_a_wrong_policy_or_handler_is_caught(tmp_path: Path, cache: Path) -> None:
    out, status = check(
        USER_CODE
        + """
def wrong(policy: str) -> fastsse.Overflow:
    return policy
bad_error_handler: fastsse.ErrorHandler = count
""",
        tmp_path,
        cache,
    )
    assert status == 1
    assert 'Incompatible return value type (got "str", expected "Literal[' in out
    assert "Incompatible types in assignment" in out
    assert len(out.splitlines()) == 2


@pytest.mark.parametrize(
    "documented",
    [
        fastsse.Consumer,
        fastsse.Event,
        fastsse.Parser,
        PureParser,
        testing.SSEServer,
        testing.Response,
        testing.event,
        testing.split,
        testing.delay,
    ],
    ids=lambda obj: obj.__qualname__,
)
def test_every_parameter_is_documented_where_help_shows_it(documented: Any) -> None:
    doc = inspect.getdoc(documented) or ""
    names = inspect.signature(documented).parameters
    assert names
    for name in names:
        assert f"``{name}``" in doc or f"{name}:" in doc, f"{name} is not in the docstring"


def test_tracebacks_name_public_classes_by_their_public_path() -> None:
    import traceback

    try:
        raise fastsse.UnexpectedStatusError("answered 404", response=None, body=b"")
    except fastsse.FastSSEError as error:
        text = "".join(traceback.format_exception_only(type(error), error))
    assert text.startswith("fastsse.UnexpectedStatusError: answered 404"), text
    private = [
        name
        for name in fastsse.__all__
        if isinstance(getattr(fastsse, name), type)
        and getattr(fastsse, name).__module__.startswith("fastsse._io")
    ]
    assert private == []


def test_the_streams_take_httpx2_clients_in_mypy(tmp_path: Path, cache: Path) -> None:
    # Issue 15, defect 13: they work at run time, so the types say so too.
    out, status = check(
        """
        import httpx
        import httpx2
        import fastsse

        async def main() -> None:
            async with fastsse.AsyncEventStream("http://h/", client=httpx2.AsyncClient()) as s:
                async for event in s:
                    print(event.data)
            fastsse.AsyncEventStream("http://h/", client=httpx.AsyncClient())
            fastsse.AsyncEventStream("http://h/", client=fastsse.async_client())

        with fastsse.EventStream("http://h/", client=httpx2.Client()) as stream:
            for event in stream:
                print(event.data)
        fastsse.EventStream("http://h/", client=httpx.Client())
        fastsse.EventStream("http://h/", client=httpx2.AsyncClient())  # the wrong flavour
        """,
        tmp_path,
        cache,
    )
    assert status == 1
    (line,) = out.splitlines()
    assert line.startswith('user.py:17: error: Argument "client" to "EventStream" has incompatible')
