"""fastsse's httpx-sse drop-in, run side by side with httpx-sse 0.4 itself.

Each behaviour test runs on three APIs: fastsse on an httpx client, fastsse on an httpx2 client,
and httpx-sse on an httpx client (the reference), sync and async, and asserts the same outcome:
what httpx-sse does, fastsse does. The tests at the end document where fastsse deliberately
differs, each with the reason (the WHATWG spec, or a bound httpx-sse lacks).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import fastsse
import httpx
import httpx_sse
import pytest
from fastsse.testing import Response, SSEServer, abort, comment, delay, event, split, stall
from support.compat import HTTPX2, readme_iter_sse_retrying

TIMEOUT = 5.0
KINDS = ("sync", "async")


@dataclass(frozen=True)
class API:
    """An httpx-sse API (``sse``: fastsse or httpx_sse) used with an HTTP library (``http``)."""

    name: str
    sse: Any
    http: ModuleType

    @property
    def is_fastsse(self) -> bool:
        return self.sse is fastsse

    def __str__(self) -> str:
        return self.name


APIS = [
    API("fastsse-httpx", fastsse, httpx),
    *[API("fastsse-httpx2", fastsse, lib) for lib in HTTPX2],
    API("httpx_sse-httpx", httpx_sse, httpx),
]
FASTSSE, HTTPX_SSE = APIS[0], APIS[-1]
FASTSSE_APIS = [api for api in APIS if api.is_fastsse]


def fields(events: list[Any]) -> list[tuple[str, str, str, int | None]]:
    return [(e.event, e.data, e.id, e.retry) for e in events]


def collect(api: API, kind: str, url: str, method: str = "GET", **kwargs: Any) -> list[Any]:
    """Every event of the stream at ``url``, through ``connect_sse`` or ``aconnect_sse``."""
    if kind == "sync":
        with (
            api.http.Client(timeout=TIMEOUT) as client,
            api.sse.connect_sse(client, method, url, **kwargs) as source,
        ):
            return list(source.iter_sse())

    async def main() -> list[Any]:
        async with (
            api.http.AsyncClient(timeout=TIMEOUT) as client,
            api.sse.aconnect_sse(client, method, url, **kwargs) as source,
        ):
            return [sse async for sse in source.aiter_sse()]

    return asyncio.run(main())


@pytest.fixture(params=APIS, ids=str)
def api(request: pytest.FixtureRequest) -> API:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


# -- the README of httpx-sse, example by example ---------------------------------------------


def test_readme_quickstart_prints_each_event(api: API, server: SSEServer) -> None:
    # The README's server: sse-starlette sending numbers 1..5, CRLF line ends, a ping comment.
    numbers = [b"data: %d\r\n\r\n" % i for i in range(1, 6)]
    server.respond(Response(body=[numbers[0], b": ping\r\n\r\n", *numbers[1:]]))
    out = io.StringIO()
    httpx, connect_sse = api.http, api.sse.connect_sse  # the README's names
    url = server.url_for("/sse")
    with contextlib.redirect_stdout(out):  # noqa: SIM117 (the example is kept as written)
        # -- the example, as written, but for the URL --
        with httpx.Client() as client:
            with connect_sse(client, "GET", url) as event_source:
                for sse in event_source.iter_sse():
                    print(sse.event, sse.data, sse.id, sse.retry)
    assert out.getvalue().splitlines() == [f"message {i}  None" for i in range(1, 6)]


async def auth_events_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The README's Starlette endpoint as a bare ASGI app, with sse-starlette's wire format."""
    assert scope["type"] == "http"
    assert scope["path"] == "/sse/auth/"
    headers = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    body = b'event: login\r\ndata: {"user_id": "4135"}\r\n\r\n'
    await send({"type": "http.response.body", "body": body, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def auth_events_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The same endpoint as a WSGI app, for the synchronous client."""
    assert environ["PATH_INFO"] == "/sse/auth/"
    assert environ["HTTP_ACCEPT"] == "text/event-stream"
    start_response("200 OK", [("Content-Type", "text/event-stream")])
    return [b"event: login\r\n", b'data: {"user_id": "4135"}\r\n\r\n']


def test_readme_calling_into_an_asgi_app(api: API) -> None:
    httpx, aconnect_sse = api.http, api.sse.aconnect_sse  # the README's names
    app = auth_events_app

    # -- the example, as written --
    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as client:  # noqa: SIM117
            async with aconnect_sse(
                client, "GET", "http://localhost:8000/sse/auth/"
            ) as event_source:
                events = [sse async for sse in event_source.aiter_sse()]
                (sse,) = events
                assert sse.event == "login"
                assert sse.json() == {"user_id": "4135"}

    asyncio.run(main())


def test_calling_into_a_wsgi_app(api: API) -> None:
    with (
        api.http.Client(transport=api.http.WSGITransport(auth_events_wsgi)) as client,
        api.sse.connect_sse(client, "GET", "http://localhost/sse/auth/") as source,
    ):
        (sse,) = source.iter_sse()
    assert (sse.event, sse.json()) == ("login", {"user_id": "4135"})


def test_readme_handling_reconnections(api: API, server: SSEServer) -> None:
    """The README's reconnect recipe: ``httpx.ReadError`` when the connection breaks, then
    ``sse.id`` and ``sse.retry`` to resume with Last-Event-ID."""
    server.respond(
        Response(body=[event("one", id="1", retry=10), event("two", id="2"), delay(0.05), abort()]),
        Response(body=[event("three", id="3")]),
    )
    httpx = api.http
    slept: list[float] = []
    iter_sse_retrying = readme_iter_sse_retrying(httpx, api.sse.connect_sse, slept)

    with httpx.Client() as client:
        events = list(iter_sse_retrying(client, "GET", server.url_for("/sse")))

    assert [sse.data for sse in events] == ["one", "two", "three"]
    first, second = server.wait_for_requests(2)
    assert first.last_event_id is None
    assert second.last_event_id == "2"
    assert slept == [0.0, 0.01]


def test_readme_raise_for_status_before_iterating(api: API, server: SSEServer) -> None:
    server.respond(Response(500, b"boom", content_type="text/plain"))
    with api.http.Client() as client:  # noqa: SIM117 (the README's example)
        with api.sse.connect_sse(client, "GET", server.url) as event_source:
            with pytest.raises(api.http.HTTPStatusError):
                event_source.response.raise_for_status()


# -- documented behaviours -------------------------------------------------------------------


def test_connect_sends_accept_and_no_store(api: API, kind: str, server: SSEServer) -> None:
    server.respond(Response(body=[event("x")]))
    collect(api, kind, server.url, headers={"X-Token": "t", "Accept": "application/json"})
    (request,) = server.requests
    assert request.header("accept") == "text/event-stream"
    assert request.header("cache-control") == "no-store"
    assert request.header("x-token") == "t"
    assert [name for name, _ in request.headers].count("accept") == 1


def test_wrong_content_type_raises_sse_error_when_iteration_starts(
    api: API, kind: str, server: SSEServer
) -> None:
    server.respond(Response.json({"error": "nope"}, status=200))

    async def aiterate(source: Any) -> None:
        async for _ in source.aiter_sse():
            pass

    if kind == "sync":
        with api.http.Client() as client, api.sse.connect_sse(client, "GET", server.url) as source:
            assert source.response.status_code == 200  # connecting did not raise
            with pytest.raises(api.sse.SSEError) as caught:
                next(iter(source.iter_sse()))
    else:

        async def main() -> pytest.ExceptionInfo[Any]:
            async with (
                api.http.AsyncClient() as client,
                api.sse.aconnect_sse(client, "GET", server.url) as source,
            ):
                assert source.response.status_code == 200
                with pytest.raises(api.sse.SSEError) as caught:
                    await aiterate(source)
                return caught

        caught = asyncio.run(main())
    assert isinstance(caught.value, httpx.TransportError)
    assert str(caught.value) == (
        "Expected response header Content-Type to contain 'text/event-stream', "
        "got 'application/json'"
    )
    if api.is_fastsse:  # Also an error of the client's own library, and it keeps the request.
        assert isinstance(caught.value, api.http.TransportError)
        assert caught.value.request.url == server.url


def test_missing_content_type_names_nothing_received(api: API, server: SSEServer) -> None:
    server.respond(Response(body=[event("x")], content_type=None))
    with pytest.raises(api.sse.SSEError, match="got ''"):
        collect(api, "sync", server.url)


@pytest.mark.parametrize(
    "content_type",
    ["text/event-stream", "text/event-stream; charset=utf-8", "text/event-stream;foo=bar"],
)
def test_event_stream_content_types_with_parameters(
    api: API, server: SSEServer, content_type: str
) -> None:
    server.respond(Response(body=[event("x")], content_type=content_type))
    assert fields(collect(api, "sync", server.url)) == [("message", "x", "", None)]


def test_fields_as_httpx_sse_gives_them(api: API, kind: str, server: SSEServer) -> None:
    body = (
        b": comment\n"
        b"event: update\nid: 7\nretry: 2500\ndata: line one\ndata:line two\n\n"
        b'data: {"a": 1}\n\n'  # id 7 persists; retry does not
        b"id:\ndata: reset id\n\n"
        b"id: a\x00b\ndata: NUL in id ignored\n\n"
        b"event:\ndata: empty type is message\n\n"
        b"data\n\n"  # a field without a colon
        b"unknown: ignored\ndata:  two spaces\n\n"
        b"data: \xc3\xa9 \xff\n\n"  # UTF-8, and invalid bytes replaced
        b"data: unterminated"
    )
    server.respond(Response(body=[*split(body, at=range(1, len(body), 7))]))
    events = collect(api, kind, server.url)
    assert fields(events) == [
        ("update", "line one\nline two", "7", 2500),
        ("message", '{"a": 1}', "7", None),
        ("message", "reset id", "", None),
        ("message", "NUL in id ignored", "", None),
        ("message", "empty type is message", "", None),
        ("message", "", "", None),
        ("message", " two spaces", "", None),
        ("message", "\u00e9 \ufffd", "", None),
    ]
    assert events[1].json() == {"a": 1}


def test_cr_and_crlf_line_ends_split_anywhere(api: API, kind: str, server: SSEServer) -> None:
    # httpx-sse >= 0.4.2 handles CR line ends as the spec says: both agree, at any split.
    body = b"data: a\rdata: b\r\rid: 2\r\ndata: c\r\n\r\ndata: d\n\n"
    server.respond(lambda _: Response(body=[*split(body, at=range(1, len(body)))]))
    expected = [("message", "a\nb", "", None), ("message", "c", "2", None)]
    assert fields(collect(api, kind, server.url)) == [*expected, ("message", "d", "2", None)]


def test_post_with_every_client_stream_keyword(api: API, kind: str, server: SSEServer) -> None:
    server.respond(Response(body=[event("ok")]))
    traced: list[str] = []

    def trace(name: str, info: Any) -> None:
        traced.append(name)

    async def atrace(name: str, info: Any) -> None:
        traced.append(name)

    events = collect(
        api,
        kind,
        server.url_for("/chat"),
        "POST",
        params={"stream": "1"},
        headers={"X-Request": "r1"},
        cookies={"session": "s1"},
        auth=("user", "pass"),
        json={"prompt": "hi"},
        timeout=api.http.Timeout(TIMEOUT),
        follow_redirects=False,
        extensions={"trace": trace if kind == "sync" else atrace},
    )
    assert [e.data for e in events] == ["ok"]
    (request,) = server.requests
    assert (request.method, request.path, request.query) == ("POST", "/chat", "stream=1")
    assert request.json() == {"prompt": "hi"}
    assert request.header("x-request") == "r1"
    assert request.header("cookie") == "session=s1"
    assert request.header("authorization") == "Basic " + base64.b64encode(b"user:pass").decode()
    assert traced  # the extensions reached the transport


@pytest.mark.parametrize(
    ("keyword", "check"),
    [
        ("content", lambda r: r.body == b"raw body"),
        ("data", lambda r: r.body == b"field=value"),
        ("files", lambda r: b'filename="a.txt"' in r.body and b"file body" in r.body),
    ],
)
def test_request_bodies_pass_through(
    api: API, server: SSEServer, keyword: str, check: Callable[[Any], bool]
) -> None:
    server.respond(Response(body=[event("ok")]))
    value: Any = {
        "content": b"raw body",
        "data": {"field": "value"},
        "files": {"upload": ("a.txt", b"file body")},
    }[keyword]
    collect(api, "sync", server.url, "POST", **{keyword: value})
    assert check(server.requests[0])


def test_follow_redirects_passes_through(api: API, kind: str, server: SSEServer) -> None:
    server.route("/old", Response.redirect("/new"))
    server.route("/new", Response(body=[event("moved")]))
    assert collect(api, kind, server.url_for("/old"), follow_redirects=True)[0].data == "moved"
    with pytest.raises(api.sse.SSEError):  # the 302 itself is not an event stream
        collect(api, kind, server.url_for("/old"), follow_redirects=False)


def test_timeout_is_the_clients(api: API, kind: str, server: SSEServer) -> None:
    server.respond(Response(body=[event("first"), stall()]))
    seen: list[Any] = []

    async def consume() -> None:
        async with (
            api.http.AsyncClient(timeout=0.2) as client,
            api.sse.aconnect_sse(client, "GET", server.url) as source,
        ):
            async for sse in source.aiter_sse():
                seen.append(sse)

    def run() -> None:
        if kind == "sync":
            with (
                api.http.Client(timeout=0.2) as client,
                api.sse.connect_sse(client, "GET", server.url) as source,
            ):
                seen.extend(source.iter_sse())
        else:
            asyncio.run(consume())

    with pytest.raises(api.http.ReadTimeout):
        run()
    assert [sse.data for sse in seen] == ["first"]


def test_broken_connection_raises_the_clients_read_error(
    api: API, kind: str, server: SSEServer
) -> None:
    # No reconnection: the break reaches the caller as the client's own ReadError.
    server.respond(Response(body=[event("a", id="1"), delay(0.05), abort()]))
    with pytest.raises(api.http.ReadError):
        collect(api, kind, server.url)
    assert len(server.requests) == 1


def test_an_unterminated_last_event_is_dropped(api: API, kind: str, server: SSEServer) -> None:
    server.respond(Response(body=[event("whole"), b"data: cut off"]))
    assert [e.data for e in collect(api, kind, server.url)] == ["whole"]


def test_event_source_wraps_a_response_from_client_stream(api: API, kind: str) -> None:
    with SSEServer(Response(body=[event("direct")])) as server:
        if kind == "sync":
            with api.http.Client() as client, client.stream("GET", server.url) as response:
                source = api.sse.EventSource(response)
                assert source.response is response
                assert [e.data for e in source.iter_sse()] == ["direct"]
            return

        async def main() -> list[str]:
            async with (
                api.http.AsyncClient() as client,
                client.stream("GET", server.url) as response,
            ):
                source = api.sse.EventSource(response)
                assert source.response is response
                return [e.data async for e in source.aiter_sse()]

        assert asyncio.run(main()) == ["direct"]


def test_a_compressed_stream_is_decoded(api: API, kind: str, server: SSEServer) -> None:
    # The parser gets the decoded bytes: a gzip-encoded stream is decompressed first.
    body = gzip.compress(event("zipped", id="1") + event("twice"))
    server.respond(Response(body=[body[:20], body[20:]], headers={"Content-Encoding": "gzip"}))
    assert fields(collect(api, kind, server.url)) == [
        ("message", "zipped", "1", None),
        ("message", "twice", "1", None),
    ]


def test_a_response_read_before_iterating(api: API, kind: str, server: SSEServer) -> None:
    server.respond(Response(body=[event("one"), event("two")]))
    if kind == "sync":
        with api.http.Client() as client, client.stream("GET", server.url) as response:
            response.read()
            data = [e.data for e in api.sse.EventSource(response).iter_sse()]
    else:

        async def main() -> list[str]:
            async with api.http.AsyncClient() as client, client.stream("GET", server.url) as r:
                await r.aread()
                return [e.data async for e in api.sse.EventSource(r).aiter_sse()]

        data = asyncio.run(main())
    assert data == ["one", "two"]


def test_breaking_out_of_aiter_sse_closes_the_stream(api: API, server: SSEServer) -> None:
    server.respond(Response(body=[event("1"), event("2"), stall()]))

    async def main() -> str:
        async with (
            api.http.AsyncClient(timeout=TIMEOUT) as client,
            api.sse.aconnect_sse(client, "GET", server.url) as source,
        ):
            events = source.aiter_sse()
            async for sse in events:  # noqa: B007
                break
            await events.aclose()  # an async generator, as httpx-sse's
            return str(sse.data)

    assert asyncio.run(main()) == "1"
    server.wait_for_idle()  # the stalled connection was closed by the client


def test_server_sent_event_constructor_defaults_and_json(api: API) -> None:
    ServerSentEvent = api.sse.ServerSentEvent
    default = ServerSentEvent()
    assert (default.event, default.data, default.id, default.retry) == ("message", "", "", None)
    assert ServerSentEvent(event="").event == "message"
    sse = ServerSentEvent("update", '{"n": [1, 2]}', "9", 1000)
    assert (sse.event, sse.data, sse.id, sse.retry) == ("update", '{"n": [1, 2]}', "9", 1000)
    assert sse.json() == {"n": [1, 2]}
    with pytest.raises(json.JSONDecodeError):
        ServerSentEvent(data="not json").json()


def test_loopback_stream_matches_httpx_sse_exactly(kind: str) -> None:
    """A realistic feed over real loopback HTTP, in odd chunks: every field of every event
    equals httpx-sse's."""
    body = b"".join(
        event(json.dumps({"i": i, "text": "é" * (i % 5)}), event="tick", id=str(i))
        + (comment() if i % 3 == 0 else b"")
        for i in range(200)
    )
    with SSEServer(lambda _: Response(body=[*split(body, at=range(0, len(body), 97))])) as server:
        ours = [fields(collect(api, kind, server.url)) for api in APIS]
    assert all(events == ours[0] for events in ours)
    assert len(ours[0]) == 200


# -- where fastsse deliberately differs ------------------------------------------------------


def both(kind: str, body: bytes, **response: Any) -> tuple[list[Any], list[Any]]:
    """The events fastsse and httpx-sse (both on httpx) make of the same response."""
    with SSEServer(Response(body=[body], **response)) as server:
        return (
            fields(collect(FASTSSE, kind, server.url)),
            fields(collect(HTTPX_SSE, kind, server.url)),
        )


def test_stricter_a_leading_bom_is_stripped(kind: str) -> None:
    # The spec strips one leading U+FEFF. httpx-sse keeps it, so the first field is named
    # "\ufeffdata", ignored, and the first event is lost.
    ours, theirs = both(kind, b"\xef\xbb\xbfdata: first\n\ndata: second\n\n")
    assert ours == [("message", "first", "", None), ("message", "second", "", None)]
    assert theirs == [("message", "second", "", None)]


def test_stricter_retry_only_ascii_digits(kind: str) -> None:
    # The spec ignores a retry field unless its value is only ASCII digits; httpx-sse takes
    # whatever int() takes: a sign, spaces, underscores.
    body = b"".join(
        b"retry: %s\ndata: %s\n\n" % (value, value) for value in (b"-1", b"+5", b"1_0", b" 7")
    )
    ours, theirs = both(kind, body + b"retry: 12\ndata: ok\n\n")
    assert [retry for *_, retry in ours] == [None, None, None, None, 12]
    assert [retry for *_, retry in theirs] == [-1, 5, 10, 7, 12]


def test_stricter_lone_event_blocks_and_heartbeats_are_not_dispatched(kind: str) -> None:
    # The spec dispatches no event whose data buffer is empty. httpx-sse dispatches one for a
    # lone event: block, and, once an id was seen, for every comment-only heartbeat block as
    # well: phantom events. A retry: (or id:) block without data is dispatched as httpx-sse
    # does, as an empty event carrying it (tests/compat/test_dataless_blocks.py).
    body = b"event: typing\n\nretry: 100\n\nid: 1\ndata: real\n\n: ping\n\n: ping\n\n"
    ours, theirs = both(kind, body)
    assert ours == [("message", "", "", 100), ("message", "real", "1", None)]
    assert theirs == [
        ("typing", "", "", None),
        ("message", "", "", 100),
        ("message", "real", "1", None),
        ("message", "", "1", None),
        ("message", "", "1", None),
    ]


def test_stricter_always_utf8(kind: str) -> None:
    # Event streams are always UTF-8 (the spec); httpx-sse decodes by the charset parameter.
    ours, theirs = both(
        kind, "data: é\n\n".encode(), content_type="text/event-stream; charset=latin-1"
    )
    assert ours == [("message", "é", "", None)]
    assert theirs == [("message", "Ã©", "", None)]


def test_content_type_is_case_insensitive(kind: str) -> None:
    # Media types are case-insensitive (RFC 9110); httpx-sse refuses this one.
    with SSEServer(Response(body=[event("x")], content_type="Text/Event-Stream")) as server:
        assert [e.data for e in collect(FASTSSE, kind, server.url)] == ["x"]
        with pytest.raises(httpx_sse.SSEError):
            collect(HTTPX_SSE, kind, server.url)


@pytest.mark.parametrize("api", FASTSSE_APIS, ids=str)
def test_memory_is_bounded_per_event(api: API, kind: str, server: SSEServer) -> None:
    # httpx-sse buffers an event of any size; fastsse raises EventTooLargeError past
    # max_event_size (16 MiB by default, a keyword of EventSource), after the events before it.
    server.respond(Response(body=[event("small") + b"data: " + b"x" * 4096 + b"\n\n"]))
    seen: list[str] = []

    async def consume(response: Any) -> None:
        async for sse in fastsse.EventSource(response, max_event_size=1024).aiter_sse():
            seen.append(sse.data)

    def run() -> None:
        if kind == "sync":
            with api.http.Client() as client, client.stream("GET", server.url) as response:
                seen.extend(
                    e.data for e in fastsse.EventSource(response, max_event_size=1024).iter_sse()
                )
        else:

            async def main() -> None:
                async with (
                    api.http.AsyncClient() as client,
                    client.stream("GET", server.url) as response,
                ):
                    await consume(response)

            asyncio.run(main())

    with pytest.raises(fastsse.EventTooLargeError):
        run()
    assert seen == ["small"]


def test_events_compare_by_value_and_repr_names_the_fields() -> None:
    # httpx-sse's ServerSentEvent compares by identity and has no hash by value; fastsse's
    # events are immutable values: equal when their fields are, usable in sets and as keys.
    a, b = fastsse.ServerSentEvent("x", "1", "2"), fastsse.ServerSentEvent("x", "1", "2")
    assert a == b
    assert len({a, b}) == 1
    assert httpx_sse.ServerSentEvent("x", "1", "2") != httpx_sse.ServerSentEvent("x", "1", "2")
    assert fastsse.ServerSentEvent is fastsse.Event
    assert repr(a) == "Event(event='x', data='1', id='2')"
    assert repr(httpx_sse.ServerSentEvent("x", "1", "2")) == (
        "ServerSentEvent(event='x', data='1', id='2')"
    )


def test_the_callers_headers_are_not_modified(server: SSEServer) -> None:
    # httpx-sse writes Accept and Cache-Control into the caller's dict.
    server.respond(Response(body=[event("x")]))
    ours: dict[str, str] = {"X-A": "1"}
    theirs: dict[str, str] = {"X-A": "1"}
    collect(FASTSSE, "sync", server.url, headers=ours)
    collect(HTTPX_SSE, "sync", server.url, headers=theirs)
    assert ours == {"X-A": "1"}
    assert theirs == {"X-A": "1", "Accept": "text/event-stream", "Cache-Control": "no-store"}


def test_headers_in_any_form_httpx_takes(server: SSEServer) -> None:
    server.respond(Response(body=[event("x")]))
    forms: list[Any] = [
        [("X-A", "1"), ("X-A", "2")],
        httpx.Headers([("X-A", "1"), ("X-A", "2")]),
        [(b"X-A", b"1"), (b"x-a", b"2"), (b"ACCEPT", b"*/*")],
    ]
    for headers in forms:
        collect(FASTSSE, "sync", server.url, headers=headers)
    for request in server.wait_for_requests(len(forms)):
        assert [value for name, value in request.headers if name == "x-a"] == [b"1", b"2"]
        assert request.header("accept") == "text/event-stream"


def test_top_level_names_are_those_of_httpx_sse() -> None:
    for name in httpx_sse.__all__:
        if name != "__version__":
            assert hasattr(fastsse, name), name
    assert issubclass(fastsse.SSEError, httpx.TransportError)


def test_json_uses_orjson_which_is_stricter_than_json() -> None:
    # orjson (in the dev extra, used when installed) refuses NaN and Infinity, which
    # json.loads, httpx-sse's decoder, accepts; on valid JSON both agree.
    data = '{"n": 1, "s": "\\u00e9", "l": [true, null, 1.5]}'
    assert fastsse.ServerSentEvent(data=data).json() == httpx_sse.ServerSentEvent(data=data).json()
    with pytest.raises(json.JSONDecodeError):
        fastsse.ServerSentEvent(data="NaN").json()
    assert str(httpx_sse.ServerSentEvent(data="NaN").json()) == "nan"
