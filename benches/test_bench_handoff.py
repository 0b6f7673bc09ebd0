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

from collections.abc import AsyncGenerator, Awaitable
from typing import Callable

from fastsse import Parser
from fastsse._fastsse import BatchIterator, Event
from fastsse._tools.corpus import llm_tokens

CORPUS = "hand-off only, llm batches"
BARE = "bare Parser loop"  # conftest.BARE_LOOP: the summary compares with it

LLM = llm_tokens(4_000_000)
_feed = Parser().feed
BATCHES = [_feed(chunk) for chunk in LLM.chunks()]  # 16 KiB chunks

#: conftest's Handler: awaited with each event.
Handle = Callable[[Event], Awaitable[None]]


async def batches() -> AsyncGenerator[list[Event], None]:
    for batch in BATCHES:
        yield batch


async def bare_loop(handle: Handle) -> None:
    async for batch in batches():
        for event in batch:
            await handle(event)


async def batch_iterator(handle: Handle) -> None:
    async for event in BatchIterator(batches()):
        await handle(event)


async def events() -> AsyncGenerator[Event, None]:
    async for batch in batches():
        for event in batch:
            yield event


async def async_generator(handle: Handle) -> None:
    async for event in events():
        await handle(event)


CONTENDERS: dict[str, Callable[[Handle], Awaitable[None]]] = {
    BARE: bare_loop,
    "BatchIterator": batch_iterator,
    "async generator": async_generator,
}


def test_hand_off_interleaved(take_turns: Callable[..., None]) -> None:
    """The contenders take turns, round after round; each one's best round goes to the summary."""
    take_turns(CORPUS, LLM, CONTENDERS)
