"""Streams against a real SSEServer: disconnects, exactly-once resume, backoff, timeouts, close.

Every loop is bounded in count and every wait in time (see stream_helpers).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import anyio
import fastsse
import httpx
import psutil
import pytest
from fastsse import AsyncEventStream, Event, EventStream, EventTooLargeError
from fastsse.testing import (
    Action,
    RecordedRequest,
    Response,
    SSEServer,
    abort,
    close,
    comment,
    delay,
    event,
    split,
    stall,
)
from support.streams import (
    KINDS,
    TIMEOUT,
    FakeClock,
    RecordingRetry,
    assert_ends_soon,
    closed_and_joined,
    collect,
    fast_retry,
    iterate_in_thread,
    run_bounded,
    silent_listener,
    transport_error,
)

MiB = 1024 * 1024


# -- exactly once across random disconnects ---------------------------------------------------

TEXTS = ["héllo wörld", "日本語のテキスト", "emoji 😀🎉 end", "plain ascii", "ß€¥ and\nsecond line"]


@dataclass
class Cut:
    connection: int
    offset: int
    mid_event: bool
    mid_utf8: bool
    aborted: bool


@dataclass
class ResumingFeed:
    """Serves ``count`` events from the Last-Event-ID it receives; the first ``cuts``
    connections are cut (RST or clean close) at a random byte offset, then the rest is sent
    whole, then 204 ends the stream."""

    count: int = 200
    cuts: int = 50
    seed: int = 0
    events: list[tuple[str, str]] = field(init=False)
    seen_ids: list[str | None] = field(default_factory=list)
    expected_ids: list[str | None] = field(default_factory=list)
    plan: list[Cut] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        # Non-ASCII ids, so that every resume also checks the Last-Event-ID bytes.
        self.events = [(f"{i}-é", f"{i}:{TEXTS[i % len(TEXTS)]}") for i in range(self.count)]
        self.index = {event_id: i for i, (event_id, _) in enumerate(self.events)}
        self.expected_ids.append(None)

    def encoded(self, i: int) -> bytes:
        event_id, data = self.events[i]
        return event(data, id=event_id, event="tick" if i % 7 == 0 else None)

    def __call__(self, request: RecordedRequest) -> Response:
        last_id = request.last_event_id
        self.seen_ids.append(last_id)
        start = 0 if last_id is None else self.index[last_id] + 1
        connection = len(self.seen_ids)
        if start >= self.count:
            return Response(204)
        if len(self.plan) >= self.cuts:
            body = b"".join(self.encoded(i) for i in range(start, self.count))
            self.expected_ids.append(self.events[-1][0])
            return Response(body=[*split(body, at=self._writes(len(body))), close()])
        stop = min(start + self.rng.randint(1, 5), self.count)
        blobs = [self.encoded(i) for i in range(start, stop)]
        body = b"".join(blobs)
        ends = []
        total = 0
        for blob in blobs:
            total += len(blob)
            ends.append(total)
        offset = self._offset(body, ends, connection)
        complete = [end for end in ends if end <= offset]
        last_complete = start + len(complete) - 1
        self.expected_ids.append(
            self.events[last_complete][0] if complete else self.expected_ids[-1]
        )
        cut = Cut(
            connection,
            offset,
            mid_event=offset not in ends,
            mid_utf8=offset < len(body) and 0x80 <= body[offset] < 0xC0,
            aborted=self.rng.random() < 0.5,
        )
        self.plan.append(cut)
        prefix = body[:offset]
        actions: list[Action] = [*split(prefix, at=self._writes(len(prefix)))]
        actions.append(abort() if cut.aborted else close())
        return Response(body=actions)

    def _offset(self, body: bytes, ends: list[int], connection: int) -> int:
        kind = connection % 3
        if kind == 0:  # inside a multi-byte UTF-8 character
            inside = [i for i in range(1, len(body)) if 0x80 <= body[i] < 0xC0]
            return self.rng.choice(inside)
        if kind == 1:  # exactly at the end of an event
            return self.rng.choice(ends)
        return self.rng.randint(1, len(body))  # anywhere

    def _writes(self, size: int) -> list[int]:
        return sorted(self.rng.sample(range(1, size), min(size - 1, self.rng.randint(0, 3))))


@pytest.mark.parametrize("kind", KINDS)
def test_fifty_random_disconnects_deliver_every_event_exactly_once_in_order(
    server: SSEServer, kind: str
) -> None:
    feed = ResumingFeed(seed=1234 + len(kind))
    server.respond(feed)
    outcome = collect(kind, server.url, retry=fast_retry(initial=0.001, max_delay=0.002))
    assert outcome.error is None
    assert [(e.id, e.data) for e in outcome.events] == feed.events
    assert [e.event for e in outcome.events] == [
        "tick" if i % 7 == 0 else "message" for i in range(feed.count)
    ]
    assert outcome.last_event_id == feed.events[-1][0]
    # The server saw, on every reconnect, the id of the last event the client completed.
    assert len(feed.plan) == 50
    assert feed.seen_ids == feed.expected_ids
    # The cuts covered what they had to.
    assert sum(cut.mid_utf8 for cut in feed.plan) >= 10
    assert sum(cut.mid_event for cut in feed.plan) >= 25
    assert sum(not cut.mid_event for cut in feed.plan) >= 10
    assert sum(cut.aborted for cut in feed.plan) >= 10
    assert sum(not cut.aborted for cut in feed.plan) >= 10
    stats = outcome.stats
    assert stats.events == feed.count
    assert stats.connections == 51
    assert stats.reconnects == 51  # 50 cuts and the clean end before the 204
    assert stats.dropped == sum(cut.mid_event for cut in feed.plan)
    assert stats.errors == sum(cut.aborted for cut in feed.plan)


@pytest.mark.parametrize("kind", KINDS)
def test_partial_event_is_dropped_and_resume_uses_the_last_dispatched_id(
    server: SSEServer, kind: str
) -> None:
    server.respond(
        Response(body=[event("one", id="1"), b"id: 2\ndata: half of tw", abort()]),
        Response(body=[event("two", id="2"), b"id: 3\ndata: three", close()]),
        # No id field: the event inherits the last *dispatched* id, not the partial one's.
        Response(body=[event("anonymous")]),
        Response(204),
    )
    outcome = collect(kind, server.url)
    assert outcome.error is None
    assert [(e.id, e.data) for e in outcome.events] == [
        ("1", "one"),
        ("2", "two"),
        ("2", "anonymous"),
    ]
    assert [r.last_event_id for r in server.requests] == [None, "1", "2", "2"]
    assert outcome.stats.dropped == 2
    assert outcome.stats.errors == 1  # the abort; the clean close mid-event is not an error
    assert outcome.stats.reconnects == 3


@pytest.mark.parametrize("kind", KINDS)
def test_bom_is_stripped_at_the_start_of_every_connection(server: SSEServer, kind: str) -> None:
    bom = b"\xef\xbb\xbf"
    server.respond(
        Response(body=[bom + event("a", id="1"), close()]),
        Response(body=[*split(bom + event("b", id="2"), at=[1, 2]), close()]),
        Response(body=[bom, event("c", id="3"), close()]),
        # A BOM later in a connection is not stripped: it makes an unknown field name.
        Response(body=[event("d", id="4"), bom + event("ignored"), event("e", id="5")]),
        Response(204),
    )
    outcome = collect(kind, server.url)
    assert outcome.error is None
    assert outcome.data == ["a", "b", "c", "d", "e"]
    assert [r.last_event_id for r in server.requests] == [None, "1", "2", "3", "5"]


# -- retry: and backoff ------------------------------------------------------------------------


def recording(**overrides: object) -> RecordingRetry:
    options: dict[str, object] = {
        "initial": 0.004,
        "multiplier": 2.0,
        "max_delay": 0.03,
        "jitter": False,
        "min_server_retry": 0.01,
        "max_server_retry": 0.05,
    }
    options.update(overrides)
    return RecordingRetry(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
def test_server_retry_is_applied_and_clamped(server: SSEServer, kind: str) -> None:
    server.respond(
        Response(body=[event("a", id="1", retry=20), close()]),  # in range: 20 ms
        Response(body=[event("b", id="2", retry=1), close()]),  # below: clamped to 10 ms
        Response(body=[event("c", id="3", retry=10**30), close()]),  # above: clamped to 50 ms
        Response(body=[b"retry: 30\n", b"retry: x\n", event("d", id="4"), close()]),
        Response(204),
    )
    # reset_after=0: every connection counts as long-lived, so each reconnect waits the (new)
    # base delay.
    policy = recording(reset_after=0.0)
    outcome = collect(kind, server.url, retry=policy)
    assert outcome.error is None
    assert outcome.data == ["a", "b", "c", "d"]
    assert policy.delays == pytest.approx([0.02, 0.01, 0.05, 0.03])
    assert [d.base for d in policy.log] == pytest.approx([0.02, 0.01, 0.05, 0.03])


@pytest.mark.parametrize("kind", KINDS)
def test_server_retry_becomes_the_base_of_the_backoff(server: SSEServer, kind: str) -> None:
    busy = Response(503, b"busy", content_type="text/plain")
    server.respond(
        Response(body=[b"retry: 10\n\n", close()]),
        busy,
        busy,
        Response(body=[event("a", id="1"), close()]),
        Response(204),
    )
    policy = recording(max_delay=0.015)
    outcome = collect(kind, server.url, retry=policy)
    assert outcome.error is None
    assert outcome.data == ["a"]
    # base 10 ms from retry:, growing, capped at max_delay; the connection that delivered an
    # event starts the backoff over, at the server's retry:.
    assert policy.delays == pytest.approx([0.01, 0.015, 0.015, 0.01])


@pytest.mark.parametrize("kind", KINDS)
def test_backoff_sequence_grows_and_caps(server: SSEServer, kind: str) -> None:
    busy = Response(503, b"busy", content_type="text/plain")
    server.respond(*[busy] * 5, Response(body=[event("a", id="1"), abort()]), Response(204))
    policy = recording()
    outcome = collect(kind, server.url, retry=policy)
    assert outcome.error is None
    assert outcome.data == ["a"]
    # 4, 8, 16 ms, then capped at 30; the connection that delivered an event resets it.
    assert policy.delays == pytest.approx([0.004, 0.008, 0.016, 0.03, 0.03, 0.004])
    causes = [d.cause for d in policy.log]
    assert all(isinstance(c, fastsse.UnexpectedStatusError) for c in causes[:5])
    assert isinstance(causes[5], transport_error("TransportError"))  # the reset
    assert outcome.stats.errors == 6
    assert outcome.stats.reconnects == 6


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("lived", "delays"), [(31.0, [0.004, 0.008, 0.004]), (29.0, [0.004, 0.008, 0.016])]
)
def test_backoff_starts_over_after_a_connection_that_lived_reset_after(
    server: SSEServer, kind: str, lived: float, delays: list[float]
) -> None:
    busy = Response(503, b"busy", content_type="text/plain")
    # A connection that delivers no event (only a heartbeat) resets the backoff only by
    # living reset_after.
    server.respond(busy, busy, Response(body=[b": hi\n", close()]), Response(204))
    clock = FakeClock()
    # reset_after is 30 s: the connection "lives" ``lived`` seconds on the fake clock.
    policy = recording(clock=clock, reset_after=30.0)
    outcome = collect(kind, server.url, retry=policy, on_connect=lambda _: clock.advance(lived))
    assert outcome.error is None
    assert outcome.data == []
    # Two failures grew the delay; after the long-lived connection it starts over, or not.
    assert policy.delays == pytest.approx(delays)


@pytest.mark.parametrize("kind", KINDS)
def test_max_attempts_counts_failures_after_a_healthy_connection(
    server: SSEServer, kind: str
) -> None:
    busy = Response(503, b"busy", content_type="text/plain")
    server.respond(Response(body=[event("a", id="1"), close()]), busy)
    outcome = collect(kind, server.url, timeout=1.0, retry=fast_retry(max_attempts=2))
    assert isinstance(outcome.error, fastsse.RetriesExhausted)
    # The healthy connection, then two failed reconnect attempts.
    assert len(server.requests) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_backoff_jitter_scales_the_delay_by_the_draw(server: SSEServer, kind: str) -> None:
    busy = Response(503, b"busy", content_type="text/plain")
    server.respond(busy, busy, busy, Response(204))
    policy = recording(jitter=True, rng_value=0.25)
    assert collect(kind, server.url, retry=policy).error is None
    assert policy.delays == pytest.approx([0.001, 0.002, 0.004])


@pytest.mark.parametrize("kind", KINDS)
def test_server_retry_floor_holds_after_jitter(server: SSEServer, kind: str) -> None:
    server.respond(
        Response(body=[b"retry: 0\n", event("a", id="1"), close()]),
        Response(body=[event("b", id="2"), close()]),
        Response(204),
    )
    policy = recording(jitter=True, rng_value=0.0, min_server_retry=0.01)
    outcome = collect(kind, server.url, retry=policy)
    assert outcome.error is None
    assert policy.delays == pytest.approx([0.01, 0.01])  # a zero draw, floored


@pytest.mark.parametrize("kind", KINDS)
def test_backoff_delays_are_actually_waited(server: SSEServer, kind: str) -> None:
    arrivals: list[float] = []

    def busy(request: RecordedRequest) -> Response:
        arrivals.append(time.monotonic())
        if len(arrivals) > 4:
            return Response(204)
        return Response(503, b"busy", content_type="text/plain")

    server.respond(busy)
    retry = fast_retry(initial=0.05, multiplier=2.0, max_delay=0.2)
    assert collect(kind, server.url, retry=retry).error is None
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert len(gaps) == 4
    for gap, expected in zip(gaps, [0.05, 0.1, 0.2, 0.2]):
        assert expected * 0.9 <= gap < expected + 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_max_attempts_gives_up_with_the_last_cause(server: SSEServer, kind: str) -> None:
    server.respond(Response(502, b"bad gateway", content_type="text/plain"))
    outcome = collect(kind, server.url, retry=fast_retry(max_attempts=3))
    error = outcome.error
    assert isinstance(error, fastsse.RetriesExhausted)
    assert error.attempts == 3
    assert isinstance(error.last_cause, fastsse.UnexpectedStatusError)
    assert error.last_cause.status_code == 502
    assert "502" in str(error)
    assert len(server.requests) == 4


# -- read timeout and heartbeats -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_stalled_connection_is_detected_by_read_timeout_and_resumed(
    server: SSEServer, kind: str
) -> None:
    arrivals: list[float] = []

    def timed(response: Response) -> object:
        def handler(request: RecordedRequest) -> Response:
            arrivals.append(time.monotonic())
            return response

        return handler

    server.respond(
        timed(Response(body=[event("one", id="1"), stall()])),
        timed(Response(body=[event("two", id="2"), close()])),
        timed(Response(204)),
    )
    outcome = collect(kind, server.url, read_timeout=0.3)
    assert outcome.error is None
    assert outcome.data == ["one", "two"]
    assert [r.last_event_id for r in server.requests] == [None, "1", "2"]
    assert 0.3 <= arrivals[1] - arrivals[0] < 2.0
    assert outcome.stats.errors == 1
    assert outcome.stats.reconnects == 2
    server.wait_for_idle(1.0)  # the stalled connection was closed by the client


@pytest.mark.parametrize("kind", KINDS)
def test_comments_keep_a_quiet_stream_alive_past_read_timeout(server: SSEServer, kind: str) -> None:
    heartbeats: list[Action] = []
    for _ in range(8):
        heartbeats += [delay(0.1), comment()]
    server.respond(
        Response(body=[event("first", id="1"), *heartbeats, event("late", id="2"), close()]),
        Response(204),
    )
    outcome = collect(kind, server.url, read_timeout=0.3)
    assert outcome.error is None
    assert outcome.data == ["first", "late"]
    assert outcome.elapsed >= 0.8
    assert outcome.stats.errors == 0
    assert len(server.requests) == 2  # no reconnect until the clean end


def test_default_read_timeout_is_generous_and_overrides_the_clients() -> None:
    assert fastsse.DEFAULT_READ_TIMEOUT >= 60
    seen: list[dict[str, float]] = []
    with SSEServer(Response(body=[event("x")]), Response(204)) as server:
        hooks = {"request": [lambda request: seen.append(request.extensions["timeout"])]}
        client = httpx.Client(timeout=5.0, event_hooks=hooks)
        with client, EventStream(server.url, client=client, retry=fast_retry()) as stream:
            assert run_bounded(lambda: [e.data for e in stream]) == ["x"]
    assert seen
    assert seen[0]["read"] == fastsse.DEFAULT_READ_TIMEOUT


@pytest.mark.anyio
async def test_async_default_read_timeout_is_generous() -> None:
    seen: list[dict[str, float]] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.extensions["timeout"])

    async with SSEServer(Response(body=[event("x")]), Response(204)) as server:
        client = httpx.AsyncClient(timeout=5.0, event_hooks={"request": [hook]})
        with anyio.fail_after(TIMEOUT):
            stream = AsyncEventStream(server.url, client=client, retry=fast_retry())
            async with client, stream:
                assert [e.data async for e in stream] == ["x"]
    assert seen[0]["read"] == fastsse.DEFAULT_READ_TIMEOUT


@pytest.mark.parametrize("kind", KINDS)
def test_stream_read_timeout_wins_over_a_short_client_timeout(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("a"), delay(0.4), event("b"), close()]), Response(204))
    client: httpx.Client | httpx.AsyncClient
    if kind == "sync":
        client = httpx.Client(timeout=0.1)
        outcome = collect(kind, server.url, client=client, read_timeout=2.0)
        assert not client.is_closed  # the caller's client is the caller's to close
        client.close()
    else:
        client = httpx.AsyncClient(timeout=0.1)
        outcome = collect(kind, server.url, client=client, read_timeout=2.0)
        assert not client.is_closed
        anyio.run(client.aclose)
    assert outcome.error is None
    assert outcome.data == ["a", "b"]
    assert len(server.requests) == 2


# -- close() and aclose() ------------------------------------------------------------------------


async def _consume_until_closed(
    stream: AsyncEventStream, ready: Callable[[list[Event]], Awaitable[object]]
) -> tuple[list[Event], float]:
    """Iterate in one task; aclose() from another once ``ready`` returns. Returns the events
    and how long aclose() took. The consumer must end within 1 s of aclose()."""
    got: list[Event] = []
    ended = anyio.Event()

    async def consume() -> None:
        async for item in stream:
            got.append(item)
        ended.set()

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            await ready(got)
            # Until the consumer is blocked inside the stream (a read, a sleep, headers).
            await _poll(lambda: getattr(stream._loop, "ag_running", False))
            started = time.monotonic()
            await stream.aclose()
            took = time.monotonic() - started
            with anyio.fail_after(1.0):
                await ended.wait()
    return got, took


def _wait_until_blocked_inside(stream: EventStream) -> None:
    """Until the reading thread is inside the stream's loop (a read, a wait, headers)."""
    deadline = time.monotonic() + TIMEOUT
    while not getattr(stream._loop, "gi_running", False):
        assert time.monotonic() < deadline, "the reader never entered the stream"
        time.sleep(0.002)


async def _poll(condition: Callable[[], object]) -> None:
    while not condition():
        await anyio.sleep(0.005)


@pytest.mark.anyio
async def test_aclose_from_another_task_ends_a_blocked_read_and_closes_the_socket() -> None:
    async with SSEServer(Response(body=[event("one", id="1"), stall()])) as server:
        stream = AsyncEventStream(server.url, retry=fast_retry())
        got, took = await _consume_until_closed(stream, lambda got: _poll(lambda: got))
        assert took < 1.0
        assert [e.data for e in got] == ["one"]
        assert stream.closed
        await server.wait_for_idle_async(1.0)  # the server saw the socket close
        assert len(server.requests) == 1
        await stream.aclose()  # idempotent


@pytest.mark.anyio
async def test_aclose_from_another_task_ends_a_backoff_wait() -> None:
    busy = Response(503, b"busy", content_type="text/plain")
    async with SSEServer(busy) as server:
        waiting = anyio.Event()
        stream = AsyncEventStream(
            server.url,
            retry=fast_retry(initial=30.0, max_delay=30.0),
            on_fault=lambda fault, delay: waiting.set(),
        )
        # on_fault runs in the consuming task just before its wait: once the test task runs
        # again, the consumer is asleep in the 30 s wait.
        got, took = await _consume_until_closed(stream, lambda _: waiting.wait())
        assert took < 1.0
        assert got == []
        assert len(server.requests) == 1
        assert stream.stats.reconnects == 1
        await server.wait_for_idle_async(1.0)


@pytest.mark.anyio
async def test_aclose_from_another_task_while_waiting_for_response_headers() -> None:
    with silent_listener() as (url, accepted):
        stream = AsyncEventStream(url, retry=fast_retry(), read_timeout=30.0)
        got, took = await _consume_until_closed(stream, lambda _: _poll(lambda: accepted))
        assert took < 1.0
        assert got == []


@pytest.mark.anyio
async def test_aclose_from_another_task_while_the_consumer_is_busy() -> None:
    body = [event("1", id="1"), delay(0.05), event("2", id="2"), stall()]
    async with SSEServer(Response(body=body)) as server:
        stream = AsyncEventStream(server.url, retry=fast_retry())
        got: list[Event] = []
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as group:

                async def consume() -> None:
                    async for item in stream:
                        got.append(item)
                        await anyio.sleep(0.3)  # busy: the stream waits at its yield

                group.start_soon(consume)
                await _poll(lambda: got)
                started = time.monotonic()
                await stream.aclose()
                assert time.monotonic() - started < 1.0
                await server.wait_for_idle_async(1.0)
        assert [e.id for e in got] == ["1"]
        assert len(server.requests) == 1


def test_close_from_another_thread_ends_a_blocked_read_and_closes_the_socket(
    server: SSEServer,
) -> None:
    server.respond(Response(body=[event("one", id="1"), stall()]))
    stream = EventStream(server.url, retry=fast_retry())
    thread, got, outcome = iterate_in_thread(stream)
    with closed_and_joined(stream, thread):
        deadline = time.monotonic() + TIMEOUT
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        _wait_until_blocked_inside(stream)
        started = time.monotonic()
        stream.close()
        assert time.monotonic() - started < 1.0
        assert_ends_soon(thread)
    assert outcome == ["ended"]
    assert [e.data for e in got] == ["one"]
    server.wait_for_idle(1.0)
    assert len(server.requests) == 1


def test_close_from_another_thread_while_the_consumer_is_busy(server: SSEServer) -> None:
    server.respond(Response(body=[event("1", id="1"), delay(0.05), event("2", id="2"), stall()]))
    stream = EventStream(server.url, retry=fast_retry())
    got: list[Event] = []

    def consume() -> None:
        for item in stream:
            got.append(item)
            time.sleep(0.3)  # busy: the stream waits at its yield

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    with closed_and_joined(stream, thread):
        deadline = time.monotonic() + TIMEOUT
        while not got and time.monotonic() < deadline:
            time.sleep(0.005)
        stream.close()
        server.wait_for_idle(1.0)  # the socket is shut down at once, from this thread
        assert_ends_soon(thread)
    assert [e.id for e in got] == ["1"]
    assert stream._loop is None
    assert stream._client is None  # The owned client was released.


def test_close_from_another_thread_ends_a_backoff_wait(server: SSEServer) -> None:
    server.respond(Response(503, b"busy", content_type="text/plain"))
    waiting = threading.Event()
    # on_fault is called with the delay just before the stream waits it: the wait is the
    # reader's next step, so close() below lands in it (or just before it, which it must see).
    stream = EventStream(
        server.url,
        retry=fast_retry(initial=30.0, max_delay=30.0),
        on_fault=lambda fault, delay: waiting.set(),
    )
    thread, _got, outcome = iterate_in_thread(stream)
    with closed_and_joined(stream, thread):
        assert waiting.wait(TIMEOUT)
        stream.close()
        assert_ends_soon(thread)
    assert outcome == ["ended"]
    assert len(server.requests) == 1
    assert stream.stats.reconnects == 1  # the 30 s wait was decided, and cut short


def test_close_from_another_thread_while_waiting_for_response_headers() -> None:
    with silent_listener() as (url, accepted):
        stream = EventStream(url, retry=fast_retry(), read_timeout=2.0)
        thread, _, outcome = iterate_in_thread(stream)
        with closed_and_joined(stream, thread):
            deadline = time.monotonic() + TIMEOUT
            while not accepted and time.monotonic() < deadline:
                time.sleep(0.01)
            _wait_until_blocked_inside(stream)
            stream.close()
            assert_ends_soon(thread)
        assert outcome == ["ended"]


@pytest.mark.parametrize("kind", KINDS)
def test_close_inside_the_loop_stops_delivery_at_once(server: SSEServer, kind: str) -> None:
    three = event("1", id="1") + event("2", id="2") + event("3", id="3")
    server.respond(Response(body=[three, stall()]))
    got: list[str] = []
    if kind == "sync":

        def consume() -> None:
            with EventStream(server.url, retry=fast_retry()) as stream:
                for item in stream:
                    got.append(item.id)
                    stream.close()

        run_bounded(consume)
    else:

        async def aconsume() -> None:
            with anyio.fail_after(TIMEOUT):
                async with AsyncEventStream(server.url, retry=fast_retry()) as stream:
                    async for item in stream:
                        got.append(item.id)
                        await stream.aclose()

        run_bounded(lambda: anyio.run(aconsume))
    assert got == ["1"]


@pytest.mark.parametrize("kind", KINDS)
def test_close_before_iterating_yields_nothing(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("never")]))
    if kind == "sync":
        stream = EventStream(server.url)
        stream.close()
        assert run_bounded(lambda: list(stream)) == []
    else:

        async def run() -> list[Event]:
            stream = AsyncEventStream(server.url)
            await stream.aclose()
            with anyio.fail_after(TIMEOUT):
                return [item async for item in stream]

        assert run_bounded(lambda: anyio.run(run)) == []
    assert server.requests == []


# -- interrupt() -----------------------------------------------------------------------------------


def test_interrupt_from_another_thread_reconnects_at_once_and_resumes(server: SSEServer) -> None:
    server.respond(
        Response(body=[event("one", id="1"), stall()]), Response(body=[event("two", id="2")])
    )
    faults: list[str] = []
    stream = EventStream(
        server.url,
        retry=fast_retry(initial=30.0, max_delay=30.0),
        on_fault=lambda fault, delay: faults.append(f"{fault.kind} {delay}"),
    )

    def run() -> list[str]:
        got = []
        for item in stream:
            got.append(item.data)
            if item.data == "one":
                _wait_until_blocked_inside_after(stream, lambda: run_bounded(stream.interrupt))
            else:
                break
        return got

    assert run_bounded(run) == ["one", "two"]
    stream.close()
    assert [r.last_event_id for r in server.requests] == [None, "1"]
    assert faults == ["interrupted 0.0"]  # no 30 s backoff
    assert stream.stats.errors == 0


def _wait_until_blocked_inside_after(stream: EventStream, action: Callable[[], object]) -> None:
    """Runs ``action`` from another thread once this thread is blocked reading the stream."""

    def later() -> None:
        _wait_until_blocked_inside(stream)
        action()

    threading.Thread(target=later, daemon=True).start()


def test_interrupt_ends_a_backoff_wait(server: SSEServer) -> None:
    server.respond(Response(503, b"busy", content_type="text/plain"), Response(body=[event("a")]))
    waiting = threading.Event()
    stream = EventStream(
        server.url,
        retry=fast_retry(initial=30.0, max_delay=30.0),
        on_fault=lambda fault, delay: waiting.set(),
    )

    def interrupt_in_the_wait() -> None:
        assert waiting.wait(TIMEOUT)
        stream.interrupt()

    threading.Thread(target=interrupt_in_the_wait, daemon=True).start()
    with stream:
        assert run_bounded(lambda: next(stream).data, 2.0) == "a"
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_async_interrupt_from_another_task_reconnects_and_resumes() -> None:
    async with SSEServer(
        Response(body=[event("one", id="1"), stall()]), Response(body=[event("two", id="2")])
    ) as server:
        stream = AsyncEventStream(server.url, retry=fast_retry(initial=30.0, max_delay=30.0))
        got: list[str] = []
        with anyio.fail_after(TIMEOUT):
            async with stream, anyio.create_task_group() as group:

                async def consume() -> None:
                    async for item in stream:
                        got.append(item.data)
                        if len(got) == 2:
                            return

                group.start_soon(consume)
                await _poll(lambda: got and getattr(stream._loop, "ag_running", False))
                stream.interrupt()
        assert got == ["one", "two"]
        assert [r.last_event_id for r in server.requests] == [None, "1"]


@pytest.mark.anyio
async def test_async_interrupt_ends_a_backoff_wait() -> None:
    busy = Response(503, b"busy", content_type="text/plain")
    async with SSEServer(busy, Response(body=[event("a")])) as server:
        waiting = anyio.Event()
        stream = AsyncEventStream(
            server.url,
            retry=fast_retry(initial=30.0, max_delay=30.0),
            on_fault=lambda fault, delay: waiting.set(),
        )
        with anyio.fail_after(2.0):
            async with stream, anyio.create_task_group() as group:

                async def interrupt_in_the_wait() -> None:
                    await waiting.wait()
                    stream.interrupt()

                group.start_soon(interrupt_in_the_wait)
                assert (await stream.__anext__()).data == "a"
        assert len(server.requests) == 2


# -- a 100 MB line: bounded memory ---------------------------------------------------------------


def _huge_line_feed(request: RecordedRequest) -> Response:
    if request.last_event_id == "2":
        return Response(204)

    def body() -> Iterator[bytes]:
        chunk = b"x" * (64 * 1024)
        yield event("before", id="1")
        yield b"data: "
        for _ in range(1600):  # 100 MiB, produced lazily
            yield chunk
        yield b"\n\n"
        yield event("after", id="2")

    return Response(body=body())


class _PeakRSS:
    def __init__(self) -> None:
        self._process = psutil.Process()
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.002)

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


@pytest.mark.parametrize("kind", KINDS)
def test_huge_line_raises_event_too_large_with_bounded_memory(server: SSEServer, kind: str) -> None:
    server.respond(_huge_line_feed)
    with _PeakRSS() as rss:
        outcome = collect(kind, server.url, timeout=30.0, max_event_size=MiB)
    assert outcome.data == ["before"]
    error = outcome.error
    assert isinstance(error, EventTooLargeError)
    assert error.max_event_size == MiB
    assert "max_event_size" in str(error)
    assert outcome.stats.oversized == 1
    assert outcome.stats.bytes < 4 * MiB  # it failed as soon as the event grew too large
    assert rss.growth < 64 * MiB
    server.wait_for_idle(1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_huge_line_is_skipped_and_counted_with_bounded_memory(server: SSEServer, kind: str) -> None:
    server.respond(_huge_line_feed)
    with _PeakRSS() as rss:
        outcome = collect(kind, server.url, timeout=30.0, max_event_size=MiB, on_oversize="skip")
    assert outcome.error is None
    assert outcome.data == ["before", "after"]
    assert outcome.stats.oversized == 1
    assert outcome.stats.bytes > 100 * MiB
    assert rss.growth < 64 * MiB
