"""The caller's client and request options: timeouts, redirects, auth, cookies and every
keyword httpx's ``client.stream()`` takes; and what a stream exposes of its response."""

from __future__ import annotations

import base64
from typing import Any

import anyio
import fastsse
import httpx
import pytest
from fastsse import AsyncEventStream, EventStream
from fastsse.testing import Response, SSEServer, event, stall
from support.streams import KINDS, TIMEOUT, collect, fast_retry, run_bounded


def make_client(kind: str, seen: list[httpx.Request], **options: Any) -> Any:
    """A caller's client of ``kind`` that records every request it sends."""
    if kind == "sync":
        return httpx.Client(event_hooks={"request": [seen.append]}, **options)

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    return httpx.AsyncClient(event_hooks={"request": [record]}, **options)


def close_client(client: Any) -> None:
    if isinstance(client, httpx.Client):
        client.close()
    else:
        anyio.run(client.aclose)


# -- the caller's client is respected --------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_clients_timeouts_apply_but_read_timeout_is_the_streams(
    server: SSEServer, kind: str
) -> None:
    server.respond(Response(body=[event("a")]), Response(204))
    seen: list[httpx.Request] = []
    client = make_client(kind, seen, timeout=httpx.Timeout(None, connect=7.0))
    try:
        outcome = collect(kind, server.url, client=client, read_timeout=42.0)
    finally:
        close_client(client)
    assert outcome.error is None
    assert seen[0].extensions["timeout"] == {
        "connect": 7.0,
        "read": 42.0,
        "write": None,
        "pool": None,
    }


@pytest.mark.parametrize("kind", KINDS)
def test_explicit_timeout_and_connect_timeout_win_over_the_clients(
    server: SSEServer, kind: str
) -> None:
    server.respond(Response(body=[event("a")]), Response(204))
    seen: list[httpx.Request] = []
    client = make_client(kind, seen, timeout=1.0)
    options: dict[str, Any] = {
        "client": client,
        "retry": fast_retry(),
        "timeout": 9.0,  # collect() has a timeout of its own
        "connect_timeout": 3.0,
        "read_timeout": 4.0,
    }
    try:
        if kind == "sync":
            with EventStream(server.url, **options) as stream:
                assert [e.data for e in run_bounded(lambda: list(stream))] == ["a"]
        else:

            async def run() -> list[str]:
                with anyio.fail_after(TIMEOUT):
                    async with AsyncEventStream(server.url, **options) as stream:
                        return [e.data async for e in stream]

            assert run_bounded(lambda: anyio.run(run)) == ["a"]
    finally:
        close_client(client)
    assert seen[0].extensions["timeout"] == {"connect": 3.0, "read": 4.0, "write": 9.0, "pool": 9.0}


@pytest.mark.parametrize("kind", KINDS)
def test_the_streams_own_client_has_the_default_timeouts(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("a")]), Response(204))
    seen: list[dict[str, float]] = []

    def hook(response: httpx.Response) -> None:
        seen.append(response.request.extensions["timeout"])

    # collect() sets a short read_timeout of its own unless given one.
    read_timeout = fastsse.DEFAULT_READ_TIMEOUT
    assert collect(kind, server.url, on_connect=hook, read_timeout=read_timeout).error is None
    default = fastsse.DEFAULT_CONNECT_TIMEOUT
    assert seen == [
        {
            "connect": default,
            "read": fastsse.DEFAULT_READ_TIMEOUT,
            "write": default,
            "pool": default,
        }
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_a_client_that_does_not_follow_redirects_is_respected(server: SSEServer, kind: str) -> None:
    server.route("/old", Response.redirect("/new", status=307))
    server.route("/new", Response(body=[event("moved")]), Response(204))
    client = make_client(kind, [])
    try:
        refused = collect(kind, server.url_for("/old"), client=client)
        followed = collect(kind, server.url_for("/old"), client=client, follow_redirects=True)
    finally:
        close_client(client)
    error = refused.error
    assert isinstance(error, fastsse.UnexpectedStatusError)
    assert error.status_code == 307
    assert "redirects to '/new'" in str(error)
    assert "follow_redirects=True" in str(error)
    assert followed.error is None
    assert followed.data == ["moved"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_clients_auth_and_cookies_apply_and_the_streams_are_added(
    server: SSEServer, kind: str
) -> None:
    server.respond(Response(body=[event("a")]), Response(204))
    client = make_client(kind, [], auth=("user", "secret"), cookies={"session": "s1"})
    try:
        mine = collect(kind, server.url, client=client)
        given = collect(kind, server.url, client=client, auth=("other", "pw"), cookies={"k": "v"})
    finally:
        close_client(client)
    assert mine.error is None
    assert given.error is None
    requests = server.requests
    assert requests[0].header("authorization") == basic("user", "secret")
    assert requests[0].header("cookie") == "session=s1"
    assert requests[2].header("authorization") == basic("other", "pw")
    assert sorted((requests[2].header("cookie") or "").split("; ")) == ["k=v", "session=s1"]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("kind", KINDS)
def test_every_request_option_reaches_the_server_on_every_request(
    server: SSEServer, kind: str
) -> None:
    server.respond(
        Response(body=[event("a", id="1"), b"retry: 1\n\n"]),
        Response(body=[event("b", id="2")]),
        Response(204),
    )
    seen: list[httpx.Request] = []
    client = make_client(kind, seen)
    try:
        outcome = collect(
            kind,
            server.url,
            client=client,
            method="PUT",
            reconnect=True,
            params={"q": "1"},
            data={"field": "value"},
            files={"upload": ("a.txt", b"file body")},
            extensions={"x-mine": "kept"},
            follow_redirects=True,
        )
    finally:
        close_client(client)
    assert outcome.error is None
    assert outcome.data == ["a", "b"]
    assert len(server.requests) == 3
    for request in server.requests:
        assert (request.method, request.query) == ("PUT", "q=1")
        assert (request.header("content-type") or "").startswith("multipart/form-data")
        assert b'name="field"\r\n\r\nvalue' in request.body
        assert b"file body" in request.body
    assert [r.extensions["x-mine"] for r in seen] == ["kept"] * 3


@pytest.mark.parametrize("kind", KINDS)
def test_the_callers_trace_extension_is_called(
    server: SSEServer, kind: str, http_client: str
) -> None:
    server.respond(Response(body=[event("a")]), Response(204))
    traced: list[str] = []

    def trace(name: str, info: dict[str, Any]) -> None:
        traced.append(name)

    async def atrace(name: str, info: dict[str, Any]) -> None:
        traced.append(name)

    extensions = {"trace": trace if kind == "sync" else atrace}
    assert collect(kind, server.url, extensions=extensions).data == ["a"]
    if http_client in ("aiohttp", "direct", "uvloop"):
        assert traced == []  # httpx-aiohttp's transport has no httpcore trace hooks to call
        return
    assert traced.count("connection.connect_tcp.complete") == 2  # one per request
    assert "http11.receive_response_headers.complete" in traced


@pytest.mark.parametrize("kind", KINDS)
def test_form_data_is_sent_again_on_reconnect(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("a", id="1")]), Response(204))
    outcome = collect(kind, server.url, method="POST", reconnect=True, data={"k": "v w"})
    assert outcome.error is None
    assert [r.body for r in server.requests] == [b"k=v+w", b"k=v+w"]


# -- stream.response -----------------------------------------------------------------------------


def test_sync_response_is_reachable_while_connected(server: SSEServer) -> None:
    server.route("/old", Response.redirect("/new"))
    server.route("/new", Response(body=[event("a"), stall()], headers={"X-RateLimit": "9"}))

    def run() -> tuple[int, str, str]:
        with EventStream(server.url_for("/old"), retry=fast_retry()) as stream:
            assert stream.response is None
            next(stream)
            response = stream.response
            assert response is not None
            return response.status_code, response.headers["x-ratelimit"], str(response.url)

    assert run_bounded(run) == (200, "9", server.url_for("/new"))


@pytest.mark.anyio
async def test_async_response_is_reachable_while_connected() -> None:
    response_headers = {"X-Request-Id": "abc"}
    async with SSEServer(Response(body=[event("a"), stall()], headers=response_headers)) as server:
        with anyio.fail_after(TIMEOUT):
            async with AsyncEventStream(server.url, retry=fast_retry()) as stream:
                assert stream.response is None
                first = await stream.__anext__()
                assert first.data == "a"
                assert stream.response is not None
                assert stream.response.status_code == 200
                assert stream.response.headers["x-request-id"] == "abc"


# -- next() and close() on both flavours -----------------------------------------------------------


def test_sync_close_as_the_response_headers_arrive_reads_nothing_of_it(server: SSEServer) -> None:
    server.respond(Response(body=[event("a"), stall()]))
    streams: list[EventStream] = []
    # httpx runs a response hook inside client.send(), once the headers are in: close() lands
    # between the headers and the stream's first look at them.
    client = httpx.Client(event_hooks={"response": [lambda response: streams[0].close()]})
    connected: list[httpx.Response] = []
    with client:
        stream = EventStream(
            server.url, client=client, on_connect=connected.append, retry=fast_retry()
        )
        streams.append(stream)
        assert run_bounded(lambda: list(stream.batches())) == []
    assert connected == []
    assert stream.stats.connections == 0
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_async_close_as_the_response_headers_arrive_reads_nothing_of_it() -> None:
    streams: list[AsyncEventStream] = []

    async def close_stream(response: httpx.Response) -> None:
        await streams[0].aclose()

    connected: list[httpx.Response] = []
    async with SSEServer(Response(body=[event("a"), stall()])) as server:
        with anyio.fail_after(TIMEOUT):
            async with httpx.AsyncClient(event_hooks={"response": [close_stream]}) as client:
                stream = AsyncEventStream(
                    server.url, client=client, on_connect=connected.append, retry=fast_retry()
                )
                streams.append(stream)
                assert [batch async for batch in stream.batches()] == []
        assert len(server.requests) == 1
    assert connected == []
    assert stream.stats.connections == 0


def test_sync_next_and_close(server: SSEServer) -> None:
    server.respond(Response(body=[event("a"), event("b"), stall()]))

    def run() -> list[str]:
        stream = EventStream(server.url, retry=fast_retry())
        got = [next(stream).data, next(stream).data]
        stream.close()
        with pytest.raises(StopIteration):
            next(stream)
        return got

    assert run_bounded(run) == ["a", "b"]
    server.wait_for_idle(TIMEOUT)
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_async_anext_and_close() -> None:
    async with SSEServer(Response(body=[event("a"), event("b"), stall()])) as server:
        with anyio.fail_after(TIMEOUT):
            stream = AsyncEventStream(server.url, retry=fast_retry())
            got = [(await stream.__anext__()).data, (await stream.__anext__()).data]
            await stream.close()
            assert stream.closed
            with pytest.raises(StopAsyncIteration):
                await stream.__anext__()
            await server.wait_for_idle_async(TIMEOUT)
    assert got == ["a", "b"]
    assert len(server.requests) == 1
