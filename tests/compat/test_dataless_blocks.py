"""Blocks that set ``id:`` or ``retry:`` without data, in the httpx-sse layer.

The spec dispatches no event for them; httpx-sse and httpx2 dispatch an empty-data event that
carries them, and clients rely on it: the MCP SDK resumes from the id of a server's priming
block (``id: evt-1``, ``retry: 0``, no data) and waits ``sse.retry`` before reconnecting, and
httpx-sse's README reconnect recipe reads ``sse.retry``. The compatibility layer dispatches
them as httpx-sse does (lone ``event:`` blocks and heartbeats stay undispatched); fastsse's own
streams keep the spec's rule. Each test runs the same bytes through httpx-sse itself (and
httpx2's ``EventSource``) and compares, at every split of the bytes into chunks: the core's
``dataless_blocks`` makes it exact, whatever the chunking.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import fastsse
import httpx
import httpx_sse
import pytest
from fastsse.testing import Response, SSEServer, abort, delay, event
from support.compat import HTTPX2, readme_iter_sse_retrying, response

TIMEOUT = 5.0
Fields = tuple[str, str, str, "int | None"]

#: (name, connect_sse's module, HTTP library): fastsse on httpx and httpx2, httpx-sse on httpx.
APIS = [
    ("fastsse-httpx", fastsse, httpx),
    *[("fastsse-httpx2", fastsse, lib) for lib in HTTPX2],
    ("httpx_sse-httpx", httpx_sse, httpx),
]
IDS = [name for name, *_ in APIS]

#: What an MCP server sends first on a streamable-HTTP SSE stream: the id to resume from and
#: the reconnect delay, no data.
PRIMING = b"id: evt-1\nretry: 0\n\n"
RESULT = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"ok": True}})


def fields(events: list[Any]) -> list[Fields]:
    return [(e.event, e.data, e.id, e.retry) for e in events]


def collect(sse: Any, http: Any, kind: str, url: str, **kwargs: Any) -> list[Fields]:
    if kind == "sync":
        with (
            http.Client(timeout=TIMEOUT) as client,
            sse.connect_sse(client, "GET", url, **kwargs) as source,
        ):
            return fields(list(source.iter_sse()))

    async def main() -> list[Fields]:
        async with (
            http.AsyncClient(timeout=TIMEOUT) as client,
            sse.aconnect_sse(client, "GET", url, **kwargs) as source,
        ):
            return fields([e async for e in source.aiter_sse()])

    return asyncio.run(main())


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("flushed", ["each block", "together"])
def test_an_mcp_priming_block_arrives_as_httpx_sse_gives_it(kind: str, flushed: str) -> None:
    if flushed == "each block":
        body = [PRIMING, delay(0.02), event(RESULT, id="evt-2"), b": keep-alive\n\n"]
    else:  # one write: the priming block and the result in the same chunk
        body = [PRIMING + event(RESULT, id="evt-2") + b": keep-alive\n\n"]
    with SSEServer(Response(body=body)) as server:
        results = {name: collect(sse, http, kind, server.url) for name, sse, http in APIS}
    expected = [("message", "", "evt-1", 0), ("message", RESULT, "evt-2", None)]
    assert results["httpx_sse-httpx"][:2] == expected
    for name in IDS[:-1]:
        # httpx-sse also yields a phantom event for the heartbeat after an id; fastsse not.
        assert results[name] == expected, name


@pytest.mark.parametrize(("name", "sse", "http"), APIS, ids=IDS)
def test_an_mcp_client_resumes_from_the_priming_id_after_its_retry(
    name: str, sse: Any, http: Any
) -> None:
    """The MCP SDK's client, reduced: it keeps the id of each event that has one as its
    resumption token and, when the stream breaks, reconnects after ``sse.retry`` ms with that
    id as Last-Event-ID."""
    with SSEServer(
        Response(body=[PRIMING, delay(0.05), abort()]),
        Response(body=[event(RESULT, id="evt-2")]),
    ) as server:

        async def client() -> tuple[list[str], list[int]]:
            token, waits, results = "", [], []
            async with http.AsyncClient(timeout=TIMEOUT) as client:
                for _ in range(3):  # bounded: one break, one resumption
                    headers = {"Last-Event-ID": token} if token else {}
                    try:
                        async with sse.aconnect_sse(
                            client, "GET", server.url, headers=headers
                        ) as source:
                            async for item in source.aiter_sse():
                                if item.id:
                                    token = item.id
                                if item.retry is not None:
                                    waits.append(item.retry)
                                if item.data:
                                    results.append(item.data)
                        return results, waits
                    except (http.ReadError, http.RemoteProtocolError):
                        continue
            raise AssertionError("the stream never ended")

        results, waits = asyncio.run(client())
        first, second = server.wait_for_requests(2)
    assert results == [RESULT]
    assert waits == [0]
    assert first.last_event_id is None
    assert second.last_event_id == "evt-1"


@pytest.mark.parametrize(("name", "sse", "http"), APIS, ids=IDS)
def test_httpx_sse_readme_recipe_reads_retry_from_a_block_without_data(
    name: str, sse: Any, http: Any
) -> None:
    # The server sets its reconnect delay in a block of its own, as servers often do.
    with SSEServer(
        Response(
            body=[
                b"retry: 10\n\n",
                event("one", id="1"),
                event("two", id="2"),
                delay(0.05),
                abort(),
            ]
        ),
        Response(body=[event("three", id="3")]),
    ) as server:
        slept: list[float] = []
        iter_sse_retrying = readme_iter_sse_retrying(http, sse.connect_sse, slept)

        with http.Client() as client:
            events = fields(list(iter_sse_retrying(client, "GET", server.url)))
        first, second = server.wait_for_requests(2)
    assert first.last_event_id is None
    assert events == [
        ("message", "", "", 10),
        ("message", "one", "1", None),
        ("message", "two", "2", None),
        ("message", "three", "3", None),
    ]
    assert slept == [0.0, 0.01]
    assert second.last_event_id == "2"


def httpx_sse_fields(chunks: list[bytes]) -> list[Fields]:
    return fields(list(httpx_sse.EventSource(response(httpx, chunks)).iter_sse()))


def httpx2_fields(chunks: list[bytes]) -> list[Fields]:
    (httpx2,) = HTTPX2
    return fields(list(httpx2.EventSource(response(httpx2, chunks))))


def fastsse_fields(chunks: list[bytes]) -> list[Fields]:
    """fastsse's drop-in, both APIs (httpx-sse's on httpx; httpx2's on httpx2, when it is
    installed), which must agree."""
    ours = fields(list(fastsse.EventSource(response(httpx, chunks)).iter_sse()))
    for http in HTTPX2:
        assert fields(list(fastsse.EventSource(response(http, chunks)))) == ours, chunks
    return ours


def splits(body: bytes) -> Iterator[list[bytes]]:
    """``body`` whole, and cut in two and in three at every pair of places."""
    yield [body]
    for i in range(1, len(body)):
        yield [body[:i], body[i:]]
        for j in range(i + 1, len(body)):
            yield [body[:i], body[i:j], body[j:]]


#: Streams that httpx-sse and httpx2 read alike (no block without data after an id but those
#: that set an id or a retry; each ends with a blank line; only digits in retry:).
SHARED = [
    pytest.param(b"retry: 10\n\nid: 1\ndata: one\n\nid: 2\ndata: two\n\n", id="retry-first"),
    pytest.param(b"data: a\n\nretry: 5\ndata: b\n\nid: 3\n\n", id="id-last"),
    pytest.param(b"retry: 5\r\n\r\ndata: a\r\n\r\n", id="crlf"),
    pytest.param(b"data: a\n\nid: 7\n\n", id="id-after-event"),
    # What the old state-reading layer could not tell apart or missed:
    pytest.param(PRIMING + b"id: evt-2\ndata: x\n\n", id="priming-then-event"),
    pytest.param(b"id: 7\n\ndata: x\n\n", id="id-only-then-event"),
    pytest.param(b"id: 3\ndata: a\n\nid: 3\n\nretry: 5\ndata: b\n\nretry: 5\n\n", id="repeats"),
    pytest.param(b"event: x\nid: 5\n\ndata: y\n\n", id="typed-block"),
    pytest.param(b"id: 1\r\rretry: 2\r\nid: 1\r\n\r\ndata: z\r\r", id="cr-repeats"),
]


@pytest.mark.parametrize("body", SHARED)
def test_blocks_without_data_cut_anywhere_give_httpx_sse_s_and_httpx2_s_events(
    body: bytes,
) -> None:
    for chunks in splits(body):
        ours = fastsse_fields(chunks)
        assert ours == httpx_sse_fields(chunks), chunks
        if HTTPX2:
            assert ours == httpx2_fields(chunks), chunks


def test_what_the_old_layer_got_wrong_is_exact() -> None:
    # An id-only block followed in its chunk by an event: two events, not one.
    assert fastsse_fields([b"id: 7\n\ndata: x\n\n"]) == [
        ("message", "", "7", None),
        ("message", "x", "7", None),
    ]
    # The priming block's own id, when the next event completes in the same chunk.
    assert fastsse_fields([PRIMING + b"id: evt-2\ndata: x\n\n"]) == [
        ("message", "", "evt-1", 0),
        ("message", "x", "evt-2", None),
    ]
    # A block repeating the current id or retry is still an event.
    assert fastsse_fields([b"id: 3\nretry: 5\ndata: a\n\n", b"id: 3\n\nretry: 5\n\n"]) == [
        ("message", "a", "3", 5),
        ("message", "", "3", None),
        ("message", "", "3", 5),
    ]
    # Its own event type, not always "message".
    assert fastsse_fields([b"event: x\nid: 5\n\n"]) == [("x", "", "5", None)]


@pytest.mark.skipif(not HTTPX2, reason="httpx2 needs Python >= 3.11")
def test_an_empty_id_block_is_an_event_as_httpx2_gives_it() -> None:
    # httpx-sse dispatches nothing for it (its test is a non-empty last id); httpx2 does, and
    # fastsse does for every block with an id: field.
    body = b"id: 1\ndata: a\n\nid\n\ndata: b\n\n"
    for chunks in splits(body):
        assert fastsse_fields(chunks) == httpx2_fields(chunks), chunks
    assert fastsse_fields([body])[1] == ("message", "", "", None)


def test_lone_event_blocks_and_heartbeats_are_not_dispatched() -> None:
    """httpx-sse yields an empty event for each (a lone ``event:`` block, and every blank line
    once an id was set), httpx2 for a lone ``event:`` block: phantom events, which fastsse
    does not make up."""
    body = b"id: 1\ndata: a\n\nevent: x\n\n: ping\n\nfoo: 1\n\n\n\ndata: b\n\n"
    expected = [("message", "a", "1", None), ("message", "b", "1", None)]
    for chunks in splits(body):
        assert fastsse_fields(chunks) == expected, chunks
    phantoms = [("x", "", "1", None), *[("message", "", "1", None)] * 4]
    assert httpx_sse_fields([body]) == [expected[0], *phantoms, expected[1]]
    if HTTPX2:
        assert httpx2_fields([body]) == [expected[0], ("x", "", "1", None), expected[1]]


def test_fastsse_s_own_streams_keep_the_spec_s_rule() -> None:
    body = [PRIMING, event("x", id="evt-2")]
    with SSEServer(Response(body=body)) as server:
        with fastsse.EventStream(server.url, reconnect=False) as stream:
            events = fields(list(stream))
        assert events == [("message", "x", "evt-2", None)]
        parser = fastsse.Parser()
        assert parser.feed(PRIMING) == []
        assert parser.last_event_id == "evt-1"
