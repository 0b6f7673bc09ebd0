"""The httpx-sse drop-in end to end: fastsse's ``aiter_sse`` against the bare ``fastsse.Parser``
loop over ``response.aiter_bytes()`` (the floor any wrapper adds to) and against httpx-sse, on
the same ``httpx.AsyncClient``, in the same run, from the same loopback server: LLM token events
in 16 KiB HTTP chunks, each event handed to an async handler that reads its fields.

Target (issue 7): the drop-in at >= 95% of the bare loop's speed. The summary prints each
contender's speed relative to the bare loop after the throughput table. The drop-in reads
``aiter_raw()`` when no content coding applies, which saves httpx's per-chunk decoding layer;
"bare loop, aiter_raw" shows that floor too, so the drop-in's own per-event cost stays visible.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from typing import Any, Callable

import httpx
import httpx_sse
import pytest
from fastsse import Parser, _bench, _corpus, aconnect_sse
from fastsse.testing import Response, SSEServer

LLM = _corpus.llm_tokens(4_000_000)
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


async def bare_raw_loop(client: httpx.AsyncClient, url: str, handle: Handler) -> None:
    """The bare loop over ``aiter_raw()``, which the drop-in reads when no content coding
    applies: the drop-in's own per-event cost is its distance to this row."""
    async with client.stream("GET", url) as response:
        feed = Parser().feed
        async for chunk in response.aiter_raw():
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
    "bare loop, aiter_raw": bare_raw_loop,
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
    record: Callable[[_bench.Result], None],
    contender: str,
) -> None:
    consume = CONTENDERS[contender]
    benchmark.group = CORPUS

    def run() -> Handler:
        handle = Handler()
        loop.run_until_complete(consume(client, server.url, handle))
        return handle

    handle = benchmark.pedantic(run, rounds=15, warmup_rounds=1)

    _bench.check_count(contender, LLM, handle.count)
    if benchmark.stats is not None:  # None under --benchmark-disable
        best = benchmark.stats.stats.min
        record(_bench.Result(CORPUS, contender, best, LLM.events, len(LLM.data)))
