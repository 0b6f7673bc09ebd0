"""Many streams in one process, on one event loop, against a feed server in its own process
(benches/feed_server.py), so that what is measured is the client alone:

- resident memory per idle stream, at 1,000 and 10,000 concurrent AsyncEventStreams that
  receive only heartbeats (``: ping`` every few seconds);
- total events/s with 1,000 active streams, each reading 2,000 events.

The streams share httpx clients (unbounded pools), one per 100 streams, and the clients share
one SSL context: httpcore's pool looks at every connection of its client for each request and
each response, so thousands of streams on one client cost O(n^2) (10,000 never finish
connecting), and a client per stream (AsyncEventStream's default) makes an SSL context each.

Run: ``python -m pytest benches/test_bench_many_streams.py --benchmark-only -s``. The
file-descriptor limit is raised to its hard limit here and in the server.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest
from fastsse import AsyncEventStream
from feed_server import serving

#: Connections opened at once: below the server's listen backlog (asyncio's default, 100).
WAVE = 100
#: Streams per httpx client (see above).
PER_CLIENT = 100
HEARTBEAT = 5.0
ACTIVE_STREAMS = 1000
EVENTS_PER_STREAM = 2000
TIMEOUT = 120.0


def raise_fd_limit(needed: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.fail(f"the hard limit on open files ({hard}) is below {needed}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@pytest.fixture(scope="module")
def heartbeat_feed() -> Iterator[str]:
    yield from serving("heartbeat", str(HEARTBEAT))


@pytest.fixture(scope="module")
def busy_feed() -> Iterator[str]:
    yield from serving("events", str(EVENTS_PER_STREAM), "0")


def rss() -> int:
    gc.collect()
    rss_bytes: int = psutil.Process().memory_info().rss
    return rss_bytes


def report(request: pytest.FixtureRequest, line: str) -> None:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


def clients(count: int) -> list[httpx.AsyncClient]:
    """Clients for ``count`` streams, ``PER_CLIENT`` streams each, sharing one SSL context."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    ssl_context = httpx.create_ssl_context()
    return [
        httpx.AsyncClient(limits=limits, verify=ssl_context) for _ in range(-(-count // PER_CLIENT))
    ]


async def idle_streams(url: str, count: int) -> tuple[int, int]:
    """Opens ``count`` streams that wait for events; returns (RSS before, RSS with them open)."""
    # Warm up first (imports, a client, one connection), so that the difference is what the
    # streams cost.
    async with AsyncEventStream(url, client=clients(1)[0]) as warm:
        await read_until_connected(warm)
    before = rss()
    pool = clients(count)
    streams = [AsyncEventStream(url, client=pool[i // PER_CLIENT]) for i in range(count)]
    tasks = []
    for start in range(0, count, WAVE):
        wave = [asyncio.ensure_future(drain(s)) for s in streams[start : start + WAVE]]
        tasks.extend(wave)
        await wait_connected(streams[start : start + WAVE])
    await wait_connected(streams)
    during = rss()
    for stream in streams:
        await stream.aclose()
    await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    for client in pool:
        await client.aclose()
    return before, during


async def read_until_connected(stream: AsyncEventStream) -> None:
    task = asyncio.ensure_future(drain(stream))
    await wait_connected([stream])
    await stream.aclose()
    await task


async def drain(stream: AsyncEventStream) -> int:
    count = 0
    async for _ in stream:
        count += 1
    return count


async def wait_connected(streams: list[AsyncEventStream]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while any(stream.stats.connections == 0 for stream in streams):
        if time.monotonic() > deadline:
            waiting = sum(stream.stats.connections == 0 for stream in streams)
            raise TimeoutError(f"{waiting} of {len(streams)} streams did not connect")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("count", [1000, 10_000])
def test_memory_per_idle_stream(
    benchmark: Any, heartbeat_feed: str, request: pytest.FixtureRequest, count: int
) -> None:
    raise_fd_limit(count + 100)
    benchmark.group = "many idle streams"
    result: list[tuple[int, int]] = []
    benchmark.pedantic(
        lambda: result.append(asyncio.run(idle_streams(heartbeat_feed, count))), rounds=1
    )
    before, during = result[0]
    per_stream = (during - before) / count
    report(
        request,
        f"{count:>6,} idle streams: RSS {before / 2**20:.0f} MiB -> {during / 2**20:.0f} MiB, "
        f"{per_stream / 1024:.1f} KiB per stream",
    )
    assert per_stream > 0


async def active_streams(url: str, count: int, shared: bool) -> int:
    """``count`` streams read to their end, on one client or ``PER_CLIENT`` per client."""
    pool = clients(PER_CLIENT if shared else count)
    try:
        streams = [
            AsyncEventStream(url, client=pool[i % len(pool)], reconnect=False) for i in range(count)
        ]
        totals = await asyncio.wait_for(asyncio.gather(*(drain(s) for s in streams)), TIMEOUT)
    finally:
        for client in pool:
            await client.aclose()
    return sum(totals)


@pytest.mark.parametrize("shared", [True, False], ids=["one client", "a client per 100"])
def test_events_per_second_with_many_active_streams(
    benchmark: Any, busy_feed: str, request: pytest.FixtureRequest, shared: bool
) -> None:
    raise_fd_limit(ACTIVE_STREAMS + 100)
    benchmark.group = "many active streams"
    total = ACTIVE_STREAMS * EVENTS_PER_STREAM
    counts: list[int] = []
    started = time.perf_counter()
    benchmark.pedantic(
        lambda: counts.append(asyncio.run(active_streams(busy_feed, ACTIVE_STREAMS, shared))),
        rounds=1,
    )
    elapsed = time.perf_counter() - started
    assert counts == [total]
    report(
        request,
        f"{ACTIVE_STREAMS:,} active streams, {'one client' if shared else 'a client per 100'}: "
        f"{total:,} events in "
        f"{elapsed:.1f} s, {total / elapsed:,.0f} events/s in all",
    )
