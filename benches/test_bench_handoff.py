"""The per-event hand-off alone, no I/O and no parsing: the events of pre-parsed 16 KiB chunks of
LLM token events, from an async generator of batches, each awaited by a handler that reads its
fields, through

- the bare loop (``async for batch in batches: for event in batch: await handle(event)``),
- ``fastsse._fastsse.BatchIterator`` (what ``EventSource.aiter_sse`` runs on),
- an async generator that yields each event of each batch (what ``aiter_sse`` was).

The difference to the bare loop, per event, is what an ``async for event in ...`` costs on top of
the consumer's own work; the summary prints each one's speed relative to the bare loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Iterator
from typing import Any, Callable

import pytest
from fastsse import Parser
from fastsse._fastsse import BatchIterator, Event
from fastsse._tools import bench
from fastsse._tools.corpus import llm_tokens

CORPUS = "hand-off only, llm batches"
BARE = "bare Parser loop"  # conftest.BARE_LOOP: the summary compares with it

LLM = llm_tokens(4_000_000)
_feed = Parser().feed
BATCHES = [_feed(chunk) for chunk in LLM.chunks()]  # 16 KiB chunks


class Handler:
    def __init__(self) -> None:
        self.count = 0
        self.size = 0

    async def __call__(self, event: Event) -> None:
        self.count += 1
        self.size += len(event.data) + len(event.event) + len(event.id)


async def batches() -> AsyncGenerator[list[Event], None]:
    for batch in BATCHES:
        yield batch


async def bare_loop(handle: Handler) -> None:
    async for batch in batches():
        for event in batch:
            await handle(event)


async def batch_iterator(handle: Handler) -> None:
    async for event in BatchIterator(batches()):
        await handle(event)


async def events() -> AsyncGenerator[Event, None]:
    async for batch in batches():
        for event in batch:
            yield event


async def async_generator(handle: Handler) -> None:
    async for event in events():
        await handle(event)


CONTENDERS: dict[str, Callable[[Handler], Awaitable[None]]] = {
    BARE: bare_loop,
    "BatchIterator": batch_iterator,
    "async generator": async_generator,
}


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_hand_off_interleaved(
    benchmark: Any, loop: asyncio.AbstractEventLoop, record: Callable[[bench.Result], None]
) -> None:
    """The contenders take turns, round after round; each one's best round goes to the summary."""
    timer = getattr(benchmark, "_timer", time.perf_counter)
    best = dict.fromkeys(CONTENDERS, float("inf"))

    def one_round_each() -> None:
        for name, consume in CONTENDERS.items():
            handle = Handler()
            started = timer()
            loop.run_until_complete(consume(handle))
            best[name] = min(best[name], timer() - started)
            bench.check_count(name, LLM, handle.count)

    benchmark.group = CORPUS
    benchmark.pedantic(one_round_each, rounds=15, warmup_rounds=1)
    if benchmark.stats is not None:
        for name, seconds in best.items():
            record(bench.Result(CORPUS, name, seconds, LLM.events, len(LLM.data)))
