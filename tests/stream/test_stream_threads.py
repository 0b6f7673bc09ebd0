"""``close()`` and ``interrupt()`` from another thread, on both flavours: the reader ends (or
reconnects) at once, whatever it is blocked in: a read on a quiet feed, the wait before a
reconnect, or the wait for the response headers on a keep-alive connection reused from the
pool (which makes no connect event)."""

from __future__ import annotations

import threading
import time
import warnings

import anyio
import anyio.to_thread
import httpx
import pytest
from fastsse import AsyncEventStream, EventStream, UnexpectedStatusError
from fastsse.testing import Response, SSEServer, event, stall
from support.streams import (
    KINDS,
    TIMEOUT,
    KeepAliveServer,
    assert_ends_soon,
    closed_and_joined,
    fast_retry,
    iterate_in_thread,
    keep_alive_server,
    redirect_loop_server,
    run_bounded,
)


@pytest.mark.anyio
async def test_async_close_from_another_thread_ends_the_iteration_on_a_quiet_feed(
    server: SSEServer,
) -> None:
    await _close_from_another_thread_on_a_quiet_feed(server)


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_async_close_from_another_thread_on_trio(server: SSEServer) -> None:
    await _close_from_another_thread_on_a_quiet_feed(server)


async def _close_from_another_thread_on_a_quiet_feed(server: SSEServer) -> None:
    server.respond(Response(body=[event("one", id="1"), stall()]))
    stream = AsyncEventStream(server.url, retry=fast_retry())
    closed_at: list[float] = []

    def close() -> None:
        closed_at.append(time.monotonic())
        stream.close()  # a plain call: nothing to await in this thread

    timer = threading.Timer(0.3, close)
    got: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with anyio.fail_after(TIMEOUT):
                async for item in stream:
                    got.append(item.data)
                    timer.start()  # the feed is quiet from now on: the read blocks
            ended_at = time.monotonic()
        finally:
            timer.cancel()
            timer.join(TIMEOUT)
    assert got == ["one"]
    assert closed_at
    assert ended_at - closed_at[0] < 1.0
    assert stream.closed
    assert stream._client is None  # the reading task released the connection and client
    assert not [w for w in caught if "never awaited" in str(w.message)], caught
    await anyio.to_thread.run_sync(server.wait_for_idle, 1.0)  # also on trio
    assert len(server.requests) == 1
    await stream.close()  # awaiting it is aclose(), as openai's AsyncStream.close() is


@pytest.mark.anyio
async def test_async_interrupt_from_another_thread_cuts_the_backoff_wait_short(
    server: SSEServer,
) -> None:
    server.respond(_busy(), Response(body=[event("a")]))
    waiting = threading.Event()
    # on_fault gets the delay just before the stream waits it: interrupt() lands in the wait
    # (or just before it, which the stream must see as well).
    stream = AsyncEventStream(
        server.url,
        retry=fast_retry(initial=30.0, max_delay=30.0),
        on_fault=lambda fault, delay: waiting.set(),
    )
    errors: list[BaseException] = []

    def interrupt_in_the_wait() -> None:
        if waiting.wait(TIMEOUT):
            try:
                stream.interrupt()
            except BaseException as error:  # what the caller's thread would get
                errors.append(error)

    thread = threading.Thread(target=interrupt_in_the_wait, daemon=True)
    thread.start()
    try:
        with anyio.fail_after(2.0):  # the 30 s wait was cut short
            async with stream:
                assert (await stream.__anext__()).data == "a"
    finally:
        thread.join(TIMEOUT)
    assert errors == []
    assert waiting.is_set()
    assert len(server.requests) == 2
    assert stream.stats.reconnects == 1


@pytest.mark.anyio
async def test_async_close_from_another_thread_ends_a_backoff_wait(server: SSEServer) -> None:
    server.respond(_busy())
    waiting = threading.Event()
    stream = AsyncEventStream(
        server.url,
        retry=fast_retry(initial=30.0, max_delay=30.0),
        on_fault=lambda fault, delay: waiting.set(),
    )
    thread = threading.Thread(target=lambda: waiting.wait(TIMEOUT) and stream.close())
    thread.start()
    try:
        with anyio.fail_after(2.0):  # the 30 s wait was cut short
            assert [item async for item in stream] == []
    finally:
        thread.join(TIMEOUT)
    assert stream.closed
    assert stream._client is None
    assert len(server.requests) == 1
    assert stream.stats.reconnects == 1  # the 30 s wait was decided, and cut short


def _busy() -> Response:
    return Response(503, b"busy", content_type="text/plain")


@pytest.mark.parametrize("kind", KINDS)
def test_close_from_another_thread_while_a_reused_connection_waits_for_headers(kind: str) -> None:
    # The first response ends cleanly with its Content-Length: the connection goes back to the
    # pool, and the reconnect reuses it; the server never answers that second request.
    with keep_alive_server(event("one", id="1")) as server:
        if kind == "sync":
            stream = EventStream(server.url, retry=fast_retry(), read_timeout=20.0)
            thread, got, outcome = iterate_in_thread(stream)
            with closed_and_joined(stream, thread):
                assert server.second_request.wait(TIMEOUT)
                started = time.monotonic()
                stream.close()
                assert_ends_soon(thread, 5.0, "close() did not end the wait for headers")
                elapsed = time.monotonic() - started
            assert outcome == ["ended"]
            assert [e.data for e in got] == ["one"]
        else:
            elapsed = run_bounded(lambda: anyio.run(_aclose_in_the_wait_for_headers, server))
        assert elapsed < 5.0  # not read_timeout's 20 s
        assert len(server.accepted) == 1  # the second request went on the reused connection


async def _aclose_in_the_wait_for_headers(server: KeepAliveServer) -> float:
    second_request = server.second_request
    stream = AsyncEventStream(server.url, retry=fast_retry(), read_timeout=20.0)
    got: list[str] = []
    closed_at: list[float] = []

    def close_once_the_second_request_arrived() -> None:
        if second_request.wait(TIMEOUT):
            closed_at.append(time.monotonic())
            stream.close()

    thread = threading.Thread(target=close_once_the_second_request_arrived, daemon=True)
    thread.start()
    try:
        with anyio.fail_after(TIMEOUT):
            async for item in stream:
                got.append(item.data)
    finally:
        thread.join(TIMEOUT)
        await stream.aclose()
    assert got == ["one"]
    assert closed_at
    return time.monotonic() - closed_at[0]


def test_closing_a_failed_stream_leaves_the_clients_pooled_connection_alone() -> None:
    # The attempt's socket went back to the client's pool when the redirects ran out: the
    # stream's close() must not shut it down under the client's (and other streams') feet.
    with redirect_loop_server() as (url, accepted), httpx.Client(follow_redirects=True) as client:
        stream = EventStream(url, client=client, retry=fast_retry())
        with pytest.raises(UnexpectedStatusError, match="redirects"):
            next(stream)
        stream.close()
        assert client.get(url, follow_redirects=False).status_code == 307
        assert len(accepted) == 1  # the same kept-alive connection served it
