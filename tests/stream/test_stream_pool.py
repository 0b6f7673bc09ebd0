"""Streams made without ``client=`` share clients (fastsse._io.pool): one per event loop (per
process for sync streams) and client settings, at most STREAMS_PER_CLIENT streams each, closed
when the last stream that holds it closes; a caller's client is the caller's."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastsse import AsyncEventStream, Event, EventStream
from fastsse._io import pool
from fastsse.testing import RecordedRequest, Response, SSEServer, event, stall
from support.streams import TIMEOUT, fast_retry


def open_feed(request: RecordedRequest) -> Response:
    """An event, then a connection that stays open: a stream that holds its client."""
    return Response(
        body=[event("a"), stall()],
        headers={"Set-Cookie": f"session={request.target}; Path=/"},
    )


@pytest.fixture
def feed() -> Iterator[SSEServer]:
    with SSEServer(open_feed) as server:
        yield server


async def first(stream: AsyncEventStream) -> Event:
    with anyio.fail_after(TIMEOUT):
        return await stream.__anext__()


def client_of(stream: Any) -> Any:
    return stream._client


@pytest.mark.anyio
async def test_streams_without_a_client_share_one(feed: SSEServer) -> None:
    streams = [AsyncEventStream(feed.url_for(f"/{i}")) for i in range(3)]
    try:
        for stream in streams:
            assert (await first(stream)).data == "a"
        clients = {id(client_of(stream)) for stream in streams}
        assert len(clients) == 1
        assert pool.lent() == 1
    finally:
        for stream in streams:
            await stream.aclose()
    assert pool.lent() == 0


@pytest.mark.anyio
async def test_a_close_leaves_the_client_to_the_others_and_the_last_closes_it(
    feed: SSEServer,
) -> None:
    one, two = AsyncEventStream(feed.url), AsyncEventStream(feed.url)
    try:
        await first(one)
        await first(two)
        client = client_of(one)
        assert client is client_of(two)
        await one.aclose()
        assert not client.is_closed
        # The other stream's connection goes on: it reconnects on the same client.
        two.interrupt()
        assert (await first(two)).data == "a"
        assert client_of(two) is client
        assert not client.is_closed
    finally:
        await one.aclose()
        await two.aclose()
    assert client.is_closed
    assert pool.lent() == 0


@pytest.mark.anyio
async def test_a_client_carries_at_most_streams_per_client(
    feed: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "STREAMS_PER_CLIENT", 2)
    streams = [AsyncEventStream(feed.url) for _ in range(5)]
    try:
        for stream in streams:
            await first(stream)
        clients = [client_of(stream) for stream in streams]
        assert [clients.index(client) for client in clients] == [0, 0, 2, 2, 4]
        await streams[4].aclose()  # the newest client closes with its only stream
        assert clients[4].is_closed
        # Every client is full: a freed place is taken again before a client is made.
        await streams[0].aclose()
        again = AsyncEventStream(feed.url)
        streams.append(again)
        await first(again)
        assert client_of(again) is clients[0]
    finally:
        for stream in streams:
            await stream.aclose()
    assert pool.lent() == 0


@pytest.mark.anyio
async def test_a_callers_client_is_kept_and_not_pooled(feed: SSEServer) -> None:
    async with httpx.AsyncClient() as mine:
        pooled = AsyncEventStream(feed.url)
        given = AsyncEventStream(feed.url, client=mine)
        try:
            await first(pooled)
            await first(given)
            assert client_of(given) is mine
            assert client_of(pooled) is not mine
        finally:
            await given.aclose()
            await pooled.aclose()
        assert not mine.is_closed


@pytest.mark.anyio
async def test_no_cookie_crosses_from_one_stream_to_another(feed: SSEServer) -> None:
    one, two = AsyncEventStream(feed.url_for("/one")), AsyncEventStream(feed.url_for("/two"))
    try:
        await first(one)  # its response sets a cookie
        await first(two)
        assert client_of(one) is client_of(two)
        requests = feed.wait_for_requests(2, TIMEOUT)
        assert all(name != "cookie" for name, _ in requests[1].headers)
    finally:
        await one.aclose()
        await two.aclose()


def test_different_event_loops_never_share(feed: SSEServer) -> None:
    loops = [asyncio.new_event_loop() for _ in range(2)]
    streams = [AsyncEventStream(feed.url) for _ in loops]
    try:
        for loop, stream in zip(loops, streams):
            assert loop.run_until_complete(first(stream)).data == "a"
        assert client_of(streams[0]) is not client_of(streams[1])
        assert pool.lent() == 2
    finally:
        for loop, stream in zip(loops, streams):
            loop.run_until_complete(stream.aclose())
            loop.close()
    assert pool.lent() == 0


def test_sync_streams_of_every_thread_share_one(feed: SSEServer) -> None:
    """Each stream is read, then closed, by a thread of its own, as sync streams are held."""
    streams = [EventStream(feed.url_for(f"/{i}")) for i in range(3)]
    read: list[str] = []
    all_read = threading.Barrier(len(streams) + 1, timeout=TIMEOUT)
    go = [threading.Event() for _ in streams]
    closed = [threading.Event() for _ in streams]

    def hold(i: int) -> None:
        with streams[i] as stream:
            read.append(next(stream).data)
            all_read.wait()
            go[i].wait(TIMEOUT)
        closed[i].set()

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(len(streams))]
    for thread in threads:
        thread.start()
    try:
        all_read.wait()
        assert read == ["a"] * 3
        client = client_of(streams[0])
        assert all(client_of(stream) is client for stream in streams)
        for i in (0, 1):
            go[i].set()
            assert closed[i].wait(TIMEOUT)
        assert not client.is_closed
        go[2].set()
        assert closed[2].wait(TIMEOUT)
        assert client.is_closed
    finally:
        for event_ in go:
            event_.set()
        for thread in threads:
            thread.join(TIMEOUT)
    assert pool.lent() == 0


@pytest.mark.anyio
async def test_a_stream_on_a_shared_client_sends_its_own_cookies_back_when_it_reconnects() -> None:
    # A sticky session: the first response sets a cookie; the stream's reconnect sends it back,
    # as a client of its own would, while another stream on the same client gets none.
    with SSEServer() as server:
        server.route(
            "/sticky",
            Response(body=[event("a", id="1")], headers={"Set-Cookie": "node=7; Path=/"}),
            Response(body=[event("b", id="2"), stall()]),
        )
        server.route("/other", Response(body=[event("x"), stall()]))
        sticky = AsyncEventStream(server.url_for("/sticky"), retry=fast_retry())
        other = AsyncEventStream(server.url_for("/other"))
        try:
            assert [(await first(sticky)).data, (await first(sticky)).data] == ["a", "b"]
            await first(other)
            assert client_of(sticky) is client_of(other)
            requests = server.wait_for_requests(3, TIMEOUT)
        finally:
            await sticky.aclose()
            await other.aclose()
    sticky_requests = [request for request in requests if request.path == "/sticky"]
    assert sticky_requests[0].header("cookie") is None
    assert sticky_requests[1].header("cookie") == "node=7"
    assert [r.header("cookie") for r in requests if r.path == "/other"] == [None]


def test_clients_are_shared_by_equal_options_only() -> None:
    # All held at once: equal options (hashable or not) share one client, others get their own.
    made: list[dict[str, Any]] = []

    def make(options: dict[str, Any]) -> Any:
        def new() -> object:
            made.append(options)
            return object()

        return new

    same = {"timeout": 5.0, "follow_redirects": True}
    other = {"timeout": 6.0, "follow_redirects": True}
    unhashable = {"timeout": 5.0, "headers": {"x": "1"}}
    held = [
        pool._acquire(("test", pool._options_key(options)), make(options))
        for options in (same, dict(same), other, unhashable, dict(unhashable))
    ]
    try:
        assert made == [same, other, unhashable]
        assert held[0] is held[1]
        assert held[3] is held[4]
        assert len({id(client) for client in held}) == 3
    finally:
        for client in held:
            pool._release(client)
    assert pool.lent() == 0
