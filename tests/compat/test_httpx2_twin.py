"""fastsse's twin of httpx2's built-in SSE, run side by side with httpx2's own.

httpx2 users move with one line: ``client.sse(url, ...)`` becomes ``fastsse.sse(client, url,
...)``, and ``httpx2.EventSource(response)`` becomes ``fastsse.EventSource(response)``,
iterated the same way. Each test runs httpx2's own API and fastsse's on the same server and
compares: with an httpx2 client, and with an httpx client too (where fastsse's SSEError, an
``httpx.TransportError``, stands for ``httpx2.SSEError``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import fastsse
import httpx
import pytest
from fastsse.testing import Response, SSEServer, comment, event, split, stall

httpx2 = pytest.importorskip("httpx2")  # needs Python >= 3.11

TIMEOUT = 5.0
KINDS = ("sync", "async")
Fields = tuple[str, str, str, "int | None"]


def fields(events: list[Any]) -> list[Fields]:
    return [(e.event, e.data, e.id, e.retry) for e in events]


def httpx2_sse(client: Any, url: str, **kwargs: Any) -> Any:
    return client.sse(url, **kwargs)


def fastsse_sse(client: Any, url: str, **kwargs: Any) -> Any:
    return fastsse.sse(client, url, **kwargs)


#: (name, HTTP library, how to connect): httpx2's own, and fastsse's on both libraries.
WAYS = [
    ("httpx2", httpx2, httpx2_sse),
    ("fastsse-httpx2", httpx2, fastsse_sse),
    ("fastsse-httpx", httpx, fastsse_sse),
]
IDS = [name for name, *_ in WAYS]


def run(http: Any, connect: Callable[..., Any], kind: str, url: str, **kwargs: Any) -> Any:
    """Every event of the stream at ``url`` through ``connect`` (``for`` / ``async for`` on
    the EventSource itself), or the exception iterating it raised, with the events before."""
    seen: list[Any] = []
    if kind == "sync":
        try:
            with http.Client(timeout=TIMEOUT) as client, connect(client, url, **kwargs) as source:
                for sse in source:
                    seen.append(sse)
        except Exception as error:
            return fields(seen), error
        return fields(seen), None

    async def main() -> tuple[list[Fields], Exception | None]:
        try:
            async with (
                http.AsyncClient(timeout=TIMEOUT) as client,
                connect(client, url, **kwargs) as source,
            ):
                async for sse in source:
                    seen.append(sse)
        except Exception as error:
            return fields(seen), error
        return fields(seen), None

    return asyncio.run(main())


def outcomes(kind: str, response: Any, **kwargs: Any) -> dict[str, Any]:
    with SSEServer(response) as server:
        return {
            name: run(http, connect, kind, server.url, **kwargs) for name, http, connect in WAYS
        }


@pytest.mark.parametrize("kind", KINDS)
def test_the_events_are_httpx2_s(kind: str) -> None:
    body = b"".join(
        event(json.dumps({"i": i, "text": "é" * (i % 4)}), event="tick", id=str(i))
        + (comment() if i % 3 == 0 else b"")
        for i in range(100)
    )
    results = outcomes(kind, lambda _: Response(body=[*split(body, at=range(0, len(body), 61))]))
    expected, error = results["httpx2"]
    assert error is None
    assert len(expected) == 100
    assert all(result == (expected, None) for result in results.values()), results


@pytest.mark.parametrize("kind", KINDS)
def test_a_block_without_data_is_an_event_as_in_httpx2(kind: str) -> None:
    # An MCP server's priming block: its id and retry reach the client as an empty event.
    body = [b"id: evt-1\nretry: 0\n\n", event("x", id="evt-2"), b"retry: 250\n\n"]
    results = outcomes(kind, Response(body=body))
    assert results["httpx2"] == (
        [
            ("message", "", "evt-1", 0),
            ("message", "x", "evt-2", None),
            ("message", "", "evt-2", 250),
        ],
        None,
    )
    assert all(result == results["httpx2"] for result in results.values()), results


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("text/html", False),
        (None, False),
        ("text/event-stream-x", False),
        ("Text/Event-Stream; charset=utf-8", True),
    ],
)
def test_a_response_that_is_not_an_event_stream_raises_httpx2_s_sse_error(
    kind: str, content_type: str | None, accepted: bool
) -> None:
    results = outcomes(kind, Response(body=[event("x")], content_type=content_type))
    theirs = results["httpx2"][1]
    for name, (events, error) in results.items():
        if accepted:
            assert (events, error) == ([("message", "x", "", None)], None), name
            continue
        assert events == [], name
        assert str(error) == str(theirs), name
        if name == "fastsse-httpx":
            assert isinstance(error, fastsse.SSEError)
            assert isinstance(error, httpx.TransportError)
        else:
            assert isinstance(error, httpx2.SSEError)
        if name.startswith("fastsse"):
            assert isinstance(error, fastsse.FastSSEError)
            assert error.request is not None


@pytest.mark.parametrize("kind", KINDS)
def test_an_event_over_max_event_size_raises_sse_error_after_the_events_before_it(
    kind: str,
) -> None:
    big = b"data: " + b"x" * (1536 * 1024) + b"\n\n"  # 1.5 MiB: over httpx2's default 1 MiB
    results = outcomes(kind, Response(body=[event("small"), big, event("after")]))
    theirs = results["httpx2"]
    assert theirs[0] == [("message", "small", "", None)]
    assert str(theirs[1]) == "Server-sent event exceeded the 1048576 byte limit."
    for name, (events, error) in results.items():
        assert events == theirs[0], name
        assert str(error) == str(theirs[1]), name
        expected = fastsse.SSEError if name == "fastsse-httpx" else httpx2.SSEError
        assert isinstance(error, expected), name


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("limit", [None, 4 * 1024 * 1024])
def test_max_event_size_none_or_larger_lets_it_through(kind: str, limit: int | None) -> None:
    big = b"data: " + b"x" * (1536 * 1024) + b"\n\n"
    results = outcomes(kind, Response(body=[big, event("after")]), max_event_size=limit)
    for name, (events, error) in results.items():
        assert error is None, (name, error)
        assert [(len(data), data[:1]) for _, data, *_ in events] == [(1536 * 1024, "x"), (5, "a")]


@pytest.mark.parametrize("event_source", [fastsse.EventSource, httpx2.EventSource])
def test_max_event_size_is_also_the_second_argument(event_source: Any) -> None:
    with (
        SSEServer(Response(body=[event("ok"), event("y" * 200)])) as server,
        httpx2.Client() as client,
        client.stream("GET", server.url) as response,
    ):
        source = event_source(response, 100)
        seen = []
        with pytest.raises(httpx2.SSEError, match="exceeded the 100 byte limit"):
            seen.extend(sse.data for sse in source)
    assert seen == ["ok"]


def test_a_smaller_max_event_size_is_honoured() -> None:
    results = outcomes("sync", Response(body=[event("ok"), event("y" * 200)]), max_event_size=100)
    for name, (events, error) in results.items():
        assert events == [("message", "ok", "", None)], name
        assert str(error) == "Server-sent event exceeded the 100 byte limit.", name


@pytest.mark.parametrize(("name", "http", "connect"), WAYS, ids=IDS)
def test_client_sse_keywords_reach_the_request_as_httpx2_sends_them(
    name: str, http: Any, connect: Callable[..., Any]
) -> None:
    with SSEServer(Response(body=[event("ok")])) as server:
        with (
            http.Client(timeout=TIMEOUT) as client,
            connect(
                client,
                server.url_for("/feed"),
                method="POST",
                json={"q": 1},
                params={"a": "b"},
                headers={"X-Trace": "t", "Accept": "text/event-stream, */*"},
                cookies={"session": "s"},
                timeout=TIMEOUT,
                follow_redirects=False,
                extensions={},
            ) as source,
        ):
            assert [sse.data for sse in source] == ["ok"]
        (request,) = server.requests
    assert request.method == "POST"
    assert request.target == "/feed?a=b"
    assert request.json() == {"q": 1}
    assert request.header("x-trace") == "t"
    assert request.header("accept") == "text/event-stream, */*"  # the caller's wins, as in httpx2
    assert request.header("cache-control") == "no-store"
    assert request.header("cookie") == "session=s"


@pytest.mark.parametrize(("name", "http", "connect"), WAYS, ids=IDS)
def test_the_client_s_timeout_applies_unless_given(
    name: str, http: Any, connect: Callable[..., Any]
) -> None:
    received = []

    def read(source: Any) -> None:
        for sse in source:
            received.append(sse.data)

    with (
        SSEServer(Response(body=[event("first"), stall()])) as server,
        http.Client(timeout=0.3) as client,
        connect(client, server.url) as source,
        pytest.raises(http.ReadTimeout),
    ):
        read(source)
    assert received == ["first"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("http", [httpx2, httpx], ids=["httpx2", "httpx"])
def test_event_source_wraps_a_response_as_httpx2_event_source_does(kind: str, http: Any) -> None:
    body = [b"id: 1\nretry: 5\n\n", event("a"), event("b", event="t", id="2")]
    with SSEServer(Response(body=body)) as server:

        def through(event_source: Any) -> list[Fields]:
            if kind == "sync":
                with http.Client() as client, client.stream("GET", server.url) as response:
                    return fields(list(event_source(response)))

            async def main() -> list[Fields]:
                async with (
                    http.AsyncClient() as client,
                    client.stream("GET", server.url) as response,
                ):
                    return fields([sse async for sse in event_source(response)])

            return asyncio.run(main())

        ours = through(fastsse.EventSource)
        theirs = through(httpx2.EventSource) if http is httpx2 else ours
    assert ours == [("message", "", "1", 5), ("message", "a", "1", None), ("t", "b", "2", None)]
    assert ours == theirs


def test_entering_with_the_wrong_with_says_which() -> None:
    async def enter_async(client: Any) -> None:
        async with fastsse.sse(client, server.url):
            pass  # pragma: no cover

    def enter(client: Any) -> None:
        with fastsse.sse(client, server.url):
            pass  # pragma: no cover

    with SSEServer(Response(body=[event("x")])) as server, httpx2.Client() as client:
        message = "fastsse.sse.. on a Client is entered with 'with', not 'async with'"
        with pytest.raises(TypeError, match=message):
            asyncio.run(enter_async(client))

    async def main() -> None:
        async with httpx.AsyncClient() as client:
            message = "on a AsyncClient is entered with 'async with', not 'with'"
            with pytest.raises(TypeError, match=message):
                enter(client)

    with SSEServer(Response(body=[event("x")])) as server:
        asyncio.run(main())


def test_bad_max_event_size_is_refused_at_once() -> None:
    with httpx2.Client() as client:
        with pytest.raises(ValueError, match="max_event_size must be at least 1 byte"):
            fastsse.sse(client, "http://127.0.0.1:1/", max_event_size=0)
        with pytest.raises(TypeError, match="max_event_size must be an int or None"):
            fastsse.sse(client, "http://127.0.0.1:1/", max_event_size=1.5)  # type: ignore[call-overload]


def test_fastsse_does_not_import_httpx2_for_an_httpx_client() -> None:
    with SSEServer() as server:
        server.route("/feed", Response(body=[event("x")]))
        server.route("/page", Response(body=[b"<p>"], content_type="text/html"))
        script = textwrap.dedent(
            f"""
            import sys
            import fastsse, httpx
            with httpx.Client() as client:
                with fastsse.sse(client, {server.url_for("/feed")!r}) as source:
                    assert [sse.data for sse in source] == ["x"]
                with fastsse.sse(client, {server.url_for("/page")!r}) as source:
                    try:
                        list(source)
                    except fastsse.SSEError:
                        print("SSEError")
            print("httpx2" in sys.modules)
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "SSEError\nFalse\n"
