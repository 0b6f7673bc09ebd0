"""The httpx-sse drop-in end to end: fastsse's ``aiter_sse`` against the bare ``fastsse.Parser``
loop over ``response.aiter_bytes()`` (the floor any wrapper adds to) and against httpx-sse, on
the same ``httpx.AsyncClient``, in the same run, from the same loopback server: LLM token events
in 16 KiB HTTP chunks, each event handed to an async handler that reads its fields.

Target (issue 7): the drop-in at >= 95% of the bare loop's speed. The summary prints each
contender's speed relative to the bare loop after the throughput table.

On a loaded machine, wall-clock rounds swing by 2x; ``--benchmark-timer=time.thread_time``
measures the CPU time of the client alone (it runs in the main thread, SSEServer in another),
which gives steady ratios.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator
from typing import Any, Callable

import httpx
import httpx_sse
import pytest
from fastsse import Parser, aconnect_sse
from fastsse._tools import bench
from fastsse._tools.corpus import llm_tokens
from fastsse.testing import Response, SSEServer

LLM = llm_tokens(4_000_000)
CORPUS = "compat e2e llm, 16 KiB chunks"
BARE = "bare Parser loop"  # conftest.BARE_LOOP: the summary compares with it


class Handler:
    """The per-event work of a consumer: an awaited handler that reads every field."""

    def __init__(self) -> None:
        self.count = 0
        self.size = 0

    async def __call__(self, event: Any) -> None:
        self.count += 1
        self.size += len(event.data) + len(event.event) + len(event.id)


async def bare_loop(client: httpx.AsyncClient, url: str, handle: Handler) -> None:
    async with client.stream("GET", url) as response:
        feed = Parser().feed
        async for chunk in response.aiter_bytes():
            for event in feed(chunk):
                await handle(event)


async def drop_in(client: httpx.AsyncClient, url: str, handle: Handler) -> None:
    async with aconnect_sse(client, "GET", url) as source:
        async for event in source.aiter_sse():
            await handle(event)


async def httpx_sse_loop(client: httpx.AsyncClient, url: str, handle: Handler) -> None:
    async with httpx_sse.aconnect_sse(client, "GET", url) as source:
        async for event in source.aiter_sse():
            await handle(event)


CONTENDERS: dict[str, Callable[[httpx.AsyncClient, str, Handler], Awaitable[None]]] = {
    BARE: bare_loop,
    "fastsse aiter_sse": drop_in,
    "httpx-sse": httpx_sse_loop,
}


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def client(loop: asyncio.AbstractEventLoop) -> Iterator[httpx.AsyncClient]:
    client = httpx.AsyncClient()
    yield client
    loop.run_until_complete(client.aclose())


@pytest.fixture(scope="module")
def server() -> Iterator[SSEServer]:
    with SSEServer(Response.stream_bytes(LLM.data, 16 * 1024)) as server:
        yield server


@pytest.mark.parametrize("contender", list(CONTENDERS))
def test_drop_in(
    benchmark: Any,
    loop: asyncio.AbstractEventLoop,
    client: httpx.AsyncClient,
    server: SSEServer,
    record: Callable[[bench.Result], None],
    contender: str,
) -> None:
    consume = CONTENDERS[contender]
    benchmark.group = CORPUS

    def run() -> Handler:
        handle = Handler()
        loop.run_until_complete(consume(client, server.url, handle))
        return handle

    handle = benchmark.pedantic(run, rounds=15, warmup_rounds=1)

    bench.check_count(contender, LLM, handle.count)
    if benchmark.stats is not None:  # None under --benchmark-disable
        best = benchmark.stats.stats.min
        record(bench.Result(CORPUS, contender, best, LLM.events, len(LLM.data)))


INTERLEAVED = "compat e2e llm, interleaved rounds"


def test_drop_in_interleaved(
    benchmark: Any,
    loop: asyncio.AbstractEventLoop,
    client: httpx.AsyncClient,
    server: SSEServer,
    record: Callable[[bench.Result], None],
) -> None:
    """The same contenders taking turns, round after round, so that a load change on a shared
    machine weighs on all of them alike; each one's best round goes to the summary. (The
    benchmark's own row times one round of all three.)"""
    # The timer pytest-benchmark was given (--benchmark-timer), for these rounds too.
    timer = getattr(benchmark, "_timer", time.perf_counter)
    best = dict.fromkeys(CONTENDERS, float("inf"))

    def one_round_each() -> None:
        for name, consume in CONTENDERS.items():
            handle = Handler()
            started = timer()
            loop.run_until_complete(consume(client, server.url, handle))
            best[name] = min(best[name], timer() - started)
            bench.check_count(name, LLM, handle.count)

    benchmark.group = INTERLEAVED
    benchmark.pedantic(one_round_each, rounds=15, warmup_rounds=1)
    if benchmark.stats is not None:
        for name, seconds in best.items():
            record(bench.Result(INTERLEAVED, name, seconds, LLM.events, len(LLM.data)))
