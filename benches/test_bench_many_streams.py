"""Many streams in one process, on one event loop, against a feed server in its own process
(benches/feed_server.py), so that what is measured is the client alone:

- resident memory per idle stream, at 1,000 and 10,000 concurrent AsyncEventStreams that
  receive only heartbeats (``: ping`` every few seconds), sharing one httpx.AsyncClient
  (unbounded pool), as a service holding many feeds would;
- total events/s with 1,000 active streams, each reading 2,000 events, on one shared
  httpx client and on one client per 100 streams.

Run: ``python -m pytest benches/test_bench_many_streams.py --benchmark-only -s``. The
file-descriptor limit is raised to its hard limit here and in the server.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from fastsse import AsyncEventStream

SCRIPT = Path(__file__).parent / "feed_server.py"
#: Connections opened at once: below the server's listen backlog (asyncio's default, 100).
WAVE = 100
HEARTBEAT = 5.0
ACTIVE_STREAMS = 1000
EVENTS_PER_STREAM = 2000
TIMEOUT = 120.0


def raise_fd_limit(needed: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.fail(f"the hard limit on open files ({hard}) is below {needed}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def feed_server(*args: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    port = process.stdout.readline().strip()
    yield f"http://127.0.0.1:{port}/"
    process.stdin.close()
    process.wait(30)


@pytest.fixture(scope="module")
def heartbeat_feed() -> Iterator[str]:
    yield from feed_server("heartbeat", str(HEARTBEAT))


@pytest.fixture(scope="module")
def busy_feed() -> Iterator[str]:
    yield from feed_server("events", str(EVENTS_PER_STREAM), "0")


def rss() -> int:
    gc.collect()
    rss_bytes: int = psutil.Process().memory_info().rss
    return rss_bytes


def report(request: pytest.FixtureRequest, line: str) -> None:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


async def idle_streams(url: str, count: int) -> tuple[int, int]:
    """Opens ``count`` streams that wait for events; returns (RSS before, RSS with them open)."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits) as client:
        # Warm up first (imports, the client's pool, one connection), so that the
        # difference is what the streams themselves cost.
        async with AsyncEventStream(url, client=client) as warm:
            await read_until_connected(warm)
        before = rss()
        streams = [AsyncEventStream(url, client=client) for _ in range(count)]
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


async def active_streams(url: str, count: int, clients: int) -> int:
    """``count`` streams read to their end, spread over ``clients`` httpx clients."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    pool = [httpx.AsyncClient(limits=limits) for _ in range(clients)]
    try:
        streams = [
            AsyncEventStream(url, client=pool[i % clients], reconnect=False) for i in range(count)
        ]
        totals = await asyncio.wait_for(asyncio.gather(*(drain(s) for s in streams)), TIMEOUT)
    finally:
        for client in pool:
            await client.aclose()
    return sum(totals)


#: httpcore's pool looks at every connection of its client for each request and response, so
#: 1,000 streams on one client cost O(n^2); a client per 100 streams keeps that small.
@pytest.mark.parametrize("clients", [1, ACTIVE_STREAMS // 100])
def test_events_per_second_with_many_active_streams(
    benchmark: Any, busy_feed: str, request: pytest.FixtureRequest, clients: int
) -> None:
    raise_fd_limit(ACTIVE_STREAMS + 100)
    benchmark.group = "many active streams"
    total = ACTIVE_STREAMS * EVENTS_PER_STREAM
    counts: list[int] = []
    started = time.perf_counter()
    benchmark.pedantic(
        lambda: counts.append(asyncio.run(active_streams(busy_feed, ACTIVE_STREAMS, clients))),
        rounds=1,
    )
    elapsed = time.perf_counter() - started
    assert counts == [total]
    report(
        request,
        f"{ACTIVE_STREAMS:,} active streams on {clients} httpx client(s): {total:,} events in "
        f"{elapsed:.1f} s, {total / elapsed:,.0f} events/s in all",
    )
