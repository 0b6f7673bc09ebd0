"""``fastsse demo``: a live stream on loopback, cut twice mid-event, resumed without loss; then
fastsse's throughput beside a pure-Python parser (and httpx-sse when installed) on one server.

Offline and quick: everything runs against :class:`fastsse.testing.SSEServer` on 127.0.0.1.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

import anyio
import httpx

from fastsse._io.stream import AsyncEventStream
from fastsse._policy import Retry
from fastsse._tools import e2e
from fastsse._tools.corpus import llm_tokens
from fastsse._tools.e2e import StreamClient
from fastsse.testing import RecordedRequest, Response, SSEServer, close

#: Events of the resilience part, and the events after which its first two connections are cut.
_RESUME_EVENTS = 20_000
_CUTS = (7_000, 13_000)


def _token_events(count: int) -> list[bytes]:
    """``count`` LLM token events with ids 1..count, each a separate bytes object."""
    corpus = llm_tokens(count * 400).data
    events = corpus.split(b"\n\n")[:count]
    assert len(events) == count, "the corpus is too small"
    return [
        b"id: %d\n%s\n\n" % (number, event.partition(b"\n")[2])
        for number, event in enumerate(events, start=1)
    ]


class _CuttingFeed:
    """Serves the events after the request's Last-Event-ID; the first connections are cut in
    the middle of an event, as a flaky network would."""

    def __init__(self, events: Sequence[bytes], cuts: Sequence[int]) -> None:
        self.events = events
        self.cuts = list(cuts)
        self.resumed_from: list[str] = []

    def __call__(self, request: RecordedRequest) -> Response:
        start = int(request.last_event_id or 0)
        if request.last_event_id is not None:
            self.resumed_from.append(request.last_event_id)
        if not self.cuts:
            return Response(body=[b"".join(self.events[start:])])
        cut = self.cuts.pop(0)
        half_event = self.events[cut][: len(self.events[cut]) // 2]
        return Response(body=[b"".join(self.events[start:cut]) + half_event, close()])


async def _resilience(server: SSEServer, out: TextIO) -> bool:
    events = _token_events(_RESUME_EVENTS)
    feed = _CuttingFeed(events, _CUTS)
    server.route("/resume", feed)
    ids: list[int] = []
    # Quick reconnects; the loop below ends at the last event, before the server's close.
    retry = Retry(initial=0.05)
    with anyio.fail_after(60):
        async with AsyncEventStream(server.url_for("/resume"), retry=retry) as stream:
            async for batch in stream.batches():
                ids.extend(int(event.id) for event in batch)
                if ids and ids[-1] == _RESUME_EVENTS:
                    break
            stats = stream.stats
    seen = set(ids)
    lost = _RESUME_EVENTS - len(seen)
    duplicated = len(ids) - len(seen)
    in_order = ids == sorted(ids)
    print(
        "Resilience: one live stream, its connection cut twice in the middle of an event", file=out
    )
    print(f"  events received     {len(ids):,} of {_RESUME_EVENTS:,}", file=out)
    print(f"  reconnects          {stats.reconnects}", file=out)
    print(f"  resumed with        Last-Event-ID {', '.join(feed.resumed_from)}", file=out)
    print(f"  half-events dropped {stats.dropped} (never delivered)", file=out)
    print(f"  lost / duplicated   {lost} / {duplicated}", file=out)
    print(f"  in order            {'yes' if in_order else 'NO'}", file=out)
    return lost == 0 and duplicated == 0 and in_order and stats.reconnects == len(_CUTS)


def _contenders() -> list[tuple[str, StreamClient]]:
    contenders: list[tuple[str, StreamClient]] = [
        ("fastsse", e2e.fastsse_batches),
        ("pure Python", e2e.pure_python),
    ]
    if e2e.httpx_sse_installed():
        contenders.append(("httpx-sse", e2e.httpx_sse))
    return contenders


async def _throughput(server: SSEServer, out: TextIO, size: int) -> None:
    corpus = llm_tokens(size)
    server.route("/tokens", Response.stream_bytes(corpus.data, chunk_size=16 * 1024))
    url = server.url_for("/tokens")
    print(
        f"\nThroughput: {corpus.events:,} LLM token events ({len(corpus.data) / 1e6:.1f} MB) "
        "over HTTP on 127.0.0.1, 16 KiB chunks",
        file=out,
    )
    rows = []
    # One client for all, as an application would have: its setup is not what is measured.
    async with httpx.AsyncClient() as client:
        for name, consume in _contenders():
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                count = await consume(client, url)
                best = min(best, time.perf_counter() - started)
            rows.append((name, count, best))
    baseline = rows[-1][2]
    baseline_name = rows[-1][0]
    print(
        f"  {'client':<12} {'events':>9} {'events/s':>12} {'MB/s':>8} {'vs ' + baseline_name:>14}",
        file=out,
    )
    for name, count, seconds in rows:
        print(
            f"  {name:<12} {count:>9,} {count / seconds:>12,.0f} "
            f"{len(corpus.data) / seconds / 1e6:>8.1f} {baseline / seconds:>13.1f}x",
            file=out,
        )


async def _demo(out: TextIO, throughput_bytes: int) -> bool:
    async with SSEServer() as server:
        print(f"SSE server on {server.url}\n", file=out)
        ok = await _resilience(server, out)
        await _throughput(server, out, throughput_bytes)
    return ok


def run_demo(out: TextIO | None = None, *, quick: bool = False) -> int:
    """Runs the live demo; returns the process exit status (non-zero if an event was lost)."""
    size = 1_500_000 if quick else 6_000_000
    return 0 if anyio.run(_demo, sys.stdout if out is None else out, size) else 1
