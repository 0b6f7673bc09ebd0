"""Soak runs, shared by tests/stream/test_soak.py (modest sizes, asserted) and benches/soak.py
(the full sizes, reported): one stream through many reconnects, counting file descriptors, threads
and asyncio tasks; many events through one Parser and through one stream, sampling RSS.

Everything here runs in one process, the loopback SSEServer included: a leak on either side
shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import anyio
import fastsse
import psutil
from fastsse import AsyncEventStream, Event, EventStream, Retry
from fastsse.testing import Response, SSEServer, event

_PROCESS = psutil.Process()


def rss() -> int:
    return int(_PROCESS.memory_info().rss)


def open_fds() -> int:
    return int(_PROCESS.num_fds())


def settled_fds(at_most: int, timeout: float = 5.0) -> int:
    """Open file descriptors once they are down to ``at_most``, or after ``timeout`` seconds.

    The server's asyncio transport closes its socket one loop iteration after it reports the
    connection closed: this waits for that, not for anything of the client's.
    """
    deadline = time.monotonic() + timeout
    while (count := open_fds()) > at_most and time.monotonic() < deadline:
        time.sleep(0.001)
    return count


#: Reconnect at once (0.1 ms) after every connection: each one delivered an event, so the
#: backoff starts over each time (reset_after=0) and never grows.
IMMEDIATE = Retry(initial=0.0001, max_delay=0.0001, multiplier=1.0, jitter=False, reset_after=0.0)


@dataclass
class ReconnectFigures:
    """Resources of the process around one stream that reconnected ``reconnects`` times."""

    reconnects: int = 0
    events: int = 0
    seconds: float = 0.0
    #: Before the stream opened, after the warm-up connections, at the last event (stream
    #: still open), and once the stream is closed and the server has closed its side too.
    fds: dict[str, int] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)  # async only: asyncio.all_tasks()

    def sample(self, when: str) -> None:
        self.fds[when] = open_fds()
        self.threads[when] = threading.active_count()
        with contextlib.suppress(RuntimeError):  # no running loop: the sync stream
            self.tasks[when] = len(asyncio.all_tasks())

    def count(self, received: Event, warmup: int, reconnects: int) -> bool:
        """Count ``received`` (which must be the next in order), sampling after the warm-up and
        at the last event: whether that was the last one wanted."""
        self.events += 1
        assert received.id == str(self.events), (received, self.events)
        if self.events == warmup:
            self.sample("warm")
        if self.events == reconnects + 1:
            self.sample("end")
            return True
        return False


def _one_event_per_connection(request: fastsse.testing.RecordedRequest) -> Response:
    """Each connection sends the event after the one it resumes from, then ends."""
    number = int(request.last_event_id or 0) + 1
    return Response(body=[event(f"event {number}", id=str(number))])


def _serve_reconnects(server: SSEServer) -> str:
    server.route("/reconnects", _one_event_per_connection)
    return server.url_for("/reconnects")


def reconnect_soak_sync(server: SSEServer, reconnects: int, warmup: int = 50) -> ReconnectFigures:
    """Reads one event per connection from one EventStream, ``reconnects + 1`` connections."""
    figures = ReconnectFigures()
    url = _serve_reconnects(server)
    figures.sample("start")
    started = time.perf_counter()
    with EventStream(url, retry=IMMEDIATE, read_timeout=10.0) as stream:
        for received in stream:
            if figures.count(received, warmup, reconnects):
                break
        figures.reconnects = stream.stats.reconnects
    figures.seconds = time.perf_counter() - started
    server.wait_for_idle()
    settled_fds(figures.fds["start"])
    figures.sample("closed")
    return figures


def reconnect_soak_async(server: SSEServer, reconnects: int, warmup: int = 50) -> ReconnectFigures:
    """The same through one AsyncEventStream, on its own asyncio loop."""

    async def run() -> ReconnectFigures:
        figures = ReconnectFigures()
        url = _serve_reconnects(server)
        figures.sample("start")
        started = time.perf_counter()
        async with AsyncEventStream(url, retry=IMMEDIATE, read_timeout=10.0) as stream:
            async for received in stream:
                if figures.count(received, warmup, reconnects):
                    break
            figures.reconnects = stream.stats.reconnects
        figures.seconds = time.perf_counter() - started
        # httpx leaves its byte iterators (async generators) to be finalised by asyncio, which
        # closes each in a task of its own, one generator per loop turn: let them end (a leaked
        # task never would), within a bounded number of turns.
        for _ in range(100):
            if len(asyncio.all_tasks()) <= figures.tasks["start"]:
                break
            await asyncio.sleep(0)
        # Blocking calls, on purpose: a worker thread (to_thread) would count as a new thread,
        # and nothing of the closed stream may still need the loop.
        server.wait_for_idle()
        settled_fds(figures.fds["start"])
        figures.sample("closed")
        return figures

    return anyio.run(run, backend="asyncio")


# -- memory ------------------------------------------------------------------------------------


def mixed_corpus() -> tuple[bytes, int]:
    """About 256 KiB of varied events and how many: LLM-like tokens with changing ids, typed
    events, multi-line data, retry, comments, non-ASCII and invalid UTF-8, a 64 KiB payload.
    It ends with a blank line, so that it can be repeated to make a longer stream."""
    parts: list[bytes] = []
    count = 0
    while sum(map(len, parts)) < 256 * 1024:
        n = count
        parts.append(event(f'{{"choices":[{{"delta":{{"content":"tok{n}"}}}}]}}', id=str(n)))
        if n % 7 == 0:
            parts.append(event(f"line one\nline two é {n}", event="update", retry=1000 + n))
        if n % 11 == 0:
            parts.append(b": keep-alive\n" + b"data: \xff\xfe invalid \xe2\x82\n\n")
        if n % 13 == 0:
            parts.append(event("é😀" * 50, event=f"type{n % 5}"))
        count += 1 + (n % 7 == 0) + (n % 11 == 0) + (n % 13 == 0)
    parts.append(event("x" * 64 * 1024, id="big"))
    return b"".join(parts), count + 1


@dataclass
class MemoryFigures:
    """RSS (bytes) over a run of ``events`` events: at the end of the warm-up, the highest
    sample after it, and at the end."""

    events: int = 0
    seconds: float = 0.0
    warm: int = 0
    peak: int = 0
    end: int = 0
    samples: int = 0

    @property
    def growth(self) -> int:
        """How far RSS rose above its post-warm-up level."""
        return self.peak - self.warm

    def sample(self, warm: bool) -> None:
        now = rss()
        self.samples += 1
        if warm:
            self.warm = self.peak = now
        self.peak = max(self.peak, now)
        self.end = now


def _repeated_chunks(events: int, chunk_size: int) -> Iterator[tuple[bytes, int]]:
    """Chunks of the repeated corpus (cut at ``chunk_size``, so mid-line), each with the number
    of events completed by the end of its corpus round (0 inside a round)."""
    corpus, per_round = mixed_corpus()
    rounds = max(1, events // per_round)
    for done in range(1, rounds + 1):
        for offset in range(0, len(corpus), chunk_size):
            end = offset + chunk_size >= len(corpus)
            yield corpus[offset : offset + chunk_size], done * per_round if end else 0


def parser_soak(events: int, chunk_size: int = 16381, samples: int = 40) -> MemoryFigures:
    """Feeds about ``events`` events through one Parser; RSS sampled after each corpus round
    (at most ``samples`` times) from the end of the first tenth on."""
    figures = MemoryFigures()
    parser = fastsse.Parser()
    every = max(1, events // samples)
    next_sample = events // 10
    started = time.perf_counter()
    for chunk, done in _repeated_chunks(events, chunk_size):
        figures.events += len(parser.feed(chunk))
        if done >= next_sample:
            figures.sample(warm=figures.samples == 0)
            next_sample += every
    figures.seconds = time.perf_counter() - started
    assert not parser.pending
    return figures


def _serve_events(server: SSEServer, events: int, chunk_size: int = 16 * 1024) -> str:
    def body(request: fastsse.testing.RecordedRequest) -> Response:
        return Response(body=(chunk for chunk, _ in _repeated_chunks(events, chunk_size)))

    server.route("/events", body)
    return server.url_for("/events")


def stream_soak(
    server: SSEServer, events: int, kind: str = "async", samples: int = 40
) -> MemoryFigures:
    """Reads about ``events`` events from one connection of one stream (``kind`` "sync" or
    "async"), the way an application does: every field of every event read."""
    url = _serve_events(server, events)
    figures = MemoryFigures()
    every = max(1, events // samples)
    warmup = events // 10

    def consume(received: fastsse.Event) -> None:
        figures.events += 1
        _ = (received.event, received.data, received.id, received.retry)
        if figures.events >= warmup and (figures.events - warmup) % every == 0:
            figures.sample(warm=figures.samples == 0)

    started = time.perf_counter()
    if kind == "sync":
        with EventStream(url, reconnect=False, read_timeout=30.0) as stream:
            for received in stream:
                consume(received)
    else:

        async def run() -> None:
            async with AsyncEventStream(url, reconnect=False, read_timeout=30.0) as stream:
                async for received in stream:
                    consume(received)

        anyio.run(run, backend="asyncio")
    figures.seconds = time.perf_counter() - started
    figures.sample(warm=False)
    return figures
