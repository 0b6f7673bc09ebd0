"""stream.json(): decoded event data, with orjson when installed and with the json fallback."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import fastsse
import fastsse._json
import pytest
from fastsse import AsyncEventStream, Event, EventStream
from fastsse.testing import Response, SSEServer, abort, close, event
from support.streams import KINDS, TIMEOUT, fast_retry, run_bounded

VALUES: list[Any] = [
    {"id": 1, "text": "héllo 😀", "nested": {"list": [1, 2.5, None, True]}},
    [1, "two", {"three": 3}],
    "just a string",
    42,
    None,
]


@contextmanager
def orjson_hidden(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """fastsse._json as imported where orjson is not installed; restored afterwards."""
    monkeypatch.setitem(sys.modules, "orjson", None)  # makes `import orjson` fail
    importlib.reload(fastsse._json)
    try:
        yield
    finally:
        monkeypatch.undo()
        importlib.reload(fastsse._json)


@pytest.fixture
def without_orjson(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with orjson_hidden(monkeypatch):
        yield
    assert fastsse._json.BACKEND == _ORIGINAL_BACKEND


_ORIGINAL_BACKEND = fastsse._json.BACKEND


def json_feed(*values: Any, malformed: str | None = None) -> list[bytes]:
    body = [
        event(json.dumps(value, ensure_ascii=False), id=str(i)) for i, value in enumerate(values)
    ]
    if malformed is not None:
        body.insert(2, event(malformed, id="bad", event="broken"))
    return body


def decode(
    kind: str, url: str, *, on_error: Any = None, **options: Any
) -> tuple[list[Any], fastsse.StreamStats]:
    """All of a stream's JSON values (bounded in time); raises what the stream raises."""
    options.setdefault("retry", fast_retry())
    if kind == "sync":

        def run() -> tuple[list[Any], fastsse.StreamStats]:
            with EventStream(url, **options) as stream:
                return list(stream.json(on_error=on_error)), stream.stats

        return run_bounded(run)

    async def arun() -> tuple[list[Any], fastsse.StreamStats]:
        with anyio.fail_after(TIMEOUT):
            async with AsyncEventStream(url, **options) as stream:
                return [value async for value in stream.json(on_error=on_error)], stream.stats

    return run_bounded(lambda: anyio.run(arun))


# -- decoding ------------------------------------------------------------------------------------


def test_backend_is_orjson_when_installed() -> None:
    pytest.importorskip("orjson")
    import orjson

    assert fastsse._json.BACKEND == "orjson"
    assert fastsse._json.loads is orjson.loads


@pytest.mark.parametrize("kind", KINDS)
def test_json_yields_decoded_values_in_order(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=json_feed(*VALUES)), Response(204))
    values, stats = decode(kind, server.url)
    assert values == VALUES
    assert stats.events == len(VALUES)
    assert stats.json_errors == 0


@pytest.mark.parametrize("kind", KINDS)
def test_json_batches_keep_the_chunking_and_skip_malformed(server: SSEServer, kind: str) -> None:
    body = json_feed(*VALUES, malformed="{not json")
    # One HTTP chunk: one batch holding every valid value.
    server.respond(Response(body=[b"".join(body)]), Response(204))
    errors: list[str] = []

    def on_error(event: fastsse.Event, error: ValueError) -> None:
        errors.append(event.id)

    if kind == "sync":
        with EventStream(server.url, retry=fast_retry()) as stream:
            batches = run_bounded(lambda: list(stream.json_batches(on_error=on_error)))
    else:

        async def arun() -> list[list[Any]]:
            with anyio.fail_after(TIMEOUT):
                async with AsyncEventStream(server.url, retry=fast_retry()) as stream:
                    return [batch async for batch in stream.json_batches(on_error=on_error)]

        batches = run_bounded(lambda: anyio.run(arun))
    assert batches == [list(VALUES)]
    assert errors == ["bad"]


@pytest.mark.parametrize("kind", KINDS)
def test_json_survives_reconnects_without_duplicates(server: SSEServer, kind: str) -> None:
    feed = json_feed(*VALUES)
    server.respond(
        Response(body=[*feed[:2], feed[2][:-3], abort()]),
        Response(body=[*feed[2:4], close()]),
        Response(body=feed[4:]),
        Response(204),
    )
    values, stats = decode(kind, server.url)
    assert values == VALUES
    assert [r.last_event_id for r in server.requests] == [None, "1", "3", "4"]
    assert stats.dropped == 1


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_event_goes_to_on_error_and_the_stream_goes_on(
    server: SSEServer, kind: str
) -> None:
    server.respond(Response(body=json_feed(*VALUES, malformed='{"truncated": ')), Response(204))
    reported: list[tuple[Event, ValueError]] = []
    values, stats = decode(kind, server.url, on_error=lambda e, err: reported.append((e, err)))
    assert values == VALUES
    assert stats.json_errors == 1
    ((bad, error),) = reported
    assert (bad.id, bad.event, bad.data) == ("bad", "broken", '{"truncated": ')
    assert isinstance(error, json.JSONDecodeError)  # orjson's error subclasses it too
    assert isinstance(error, ValueError)


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_event_is_logged_by_default(
    server: SSEServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.respond(Response(body=json_feed(*VALUES, malformed="not json at all")), Response(204))
    with caplog.at_level(logging.WARNING, logger="fastsse"):
        values, stats = decode(kind, server.url)
    assert values == VALUES
    assert stats.json_errors == 1
    warnings = [r for r in caplog.records if r.name == "fastsse" and r.levelno >= logging.WARNING]
    (record,) = [r for r in warnings if "not JSON" in r.getMessage()]
    message = record.getMessage()
    assert "not JSON" in message
    assert "'bad'" in message  # the event's id
    assert "'broken'" in message  # and type
    assert "not json at all" in message  # and the start of its data


@pytest.mark.parametrize("kind", KINDS)
def test_an_on_error_that_raises_ends_the_stream(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=json_feed(*VALUES, malformed="{")), Response(204))

    def strict(event: Event, error: ValueError) -> None:
        raise RuntimeError(f"event {event.id} is not JSON") from error

    with pytest.raises(RuntimeError, match="event bad is not JSON"):
        decode(kind, server.url, on_error=strict)


@pytest.mark.parametrize("kind", KINDS)
def test_every_malformed_event_is_counted(server: SSEServer, kind: str) -> None:
    body = [event("1", id="1"), event("{", id="2"), event("", id="3"), event("[2]", id="4")]
    server.respond(Response(body=body), Response(204))
    reported: list[str] = []
    values, stats = decode(kind, server.url, on_error=lambda e, err: reported.append(e.id))
    assert values == [1, [2]]
    assert reported == ["2", "3"]
    assert stats.json_errors == 2
    assert stats.events == 4


def test_event_json_method_decodes_data() -> None:
    assert Event(data='{"a": [1, "é"]}').json() == {"a": [1, "é"]}
    with pytest.raises(json.JSONDecodeError):
        Event(data="{").json()


# -- without orjson --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_monkeypatched_loads_is_used(
    server: SSEServer, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def spy(data: str | bytes) -> Any:
        calls.append(data if isinstance(data, str) else data.decode())
        return json.loads(data)

    monkeypatch.setattr(fastsse._json, "loads", spy)
    server.respond(Response(body=json_feed(*VALUES, malformed="{oops")), Response(204))
    reported: list[ValueError] = []
    values, stats = decode(kind, server.url, on_error=lambda e, err: reported.append(err))
    assert values == VALUES
    assert len(calls) == len(VALUES) + 1
    assert stats.json_errors == 1
    assert type(reported[0]) is json.JSONDecodeError
    assert Event(data="[1]").json() == [1]
    assert len(calls) == len(VALUES) + 2  # Event.json() goes through fastsse._json too


@pytest.mark.usefixtures("without_orjson")
def test_without_orjson_the_backend_is_json() -> None:
    assert fastsse._json.BACKEND == "json"
    assert fastsse._json.loads is json.loads
    assert Event(data='{"a": "é"}').json() == {"a": "é"}


@pytest.mark.usefixtures("without_orjson")
@pytest.mark.parametrize("kind", KINDS)
def test_without_orjson_the_stream_decodes_and_reports(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=json_feed(*VALUES, malformed="[1,")), Response(204))
    reported: list[tuple[Event, ValueError]] = []
    values, stats = decode(kind, server.url, on_error=lambda e, err: reported.append((e, err)))
    assert values == VALUES
    assert stats.json_errors == 1
    ((bad, error),) = reported
    assert bad.id == "bad"
    assert type(error) is json.JSONDecodeError
    assert "line 1" in str(error)  # json's message says where it failed


@pytest.mark.usefixtures("without_orjson")
@pytest.mark.parametrize("kind", KINDS)
def test_without_orjson_malformed_event_is_logged(
    server: SSEServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.respond(Response(body=json_feed(*VALUES, malformed="nope")), Response(204))
    with caplog.at_level(logging.WARNING, logger="fastsse"):
        values, _ = decode(kind, server.url)
    assert values == VALUES
    assert any("not JSON" in r.getMessage() for r in caplog.records)


def test_orjson_is_restored_after_hiding_it(monkeypatch: pytest.MonkeyPatch) -> None:
    original = fastsse._json.loads
    with orjson_hidden(monkeypatch):
        assert fastsse._json.BACKEND == "json"
        assert fastsse._json.loads is json.loads
    assert fastsse._json.loads is original
    if _ORIGINAL_BACKEND == "orjson":
        import orjson

        assert fastsse._json.loads is orjson.loads
    assert fastsse._json.BACKEND == _ORIGINAL_BACKEND
