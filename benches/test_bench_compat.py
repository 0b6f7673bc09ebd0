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
import functools
from collections.abc import Awaitable, Iterator
from typing import Any, Callable

import httpx
import httpx_sse
import pytest
from fastsse import Parser, aconnect_sse
from fastsse._tools.corpus import llm_tokens
from fastsse.testing import Response, SSEServer

LLM = llm_tokens(4_000_000)
CORPUS = "compat e2e llm, 16 KiB chunks"
INTERLEAVED = "compat e2e llm, interleaved rounds"
BARE = "bare Parser loop"  # conftest.BARE_LOOP: the summary compares with it

#: conftest's Handler: awaited with each event.
Handle = Callable[[Any], Awaitable[None]]
#: Reads the whole stream, awaiting the handler with each event.
Consume = Callable[[Handle], Awaitable[None]]


async def bare_loop(client: httpx.AsyncClient, url: str, handle: Handle) -> None:
    async with client.stream("GET", url) as response:
        feed = Parser().feed
        async for chunk in response.aiter_bytes():
            for event in feed(chunk):
                await handle(event)


async def drop_in(client: httpx.AsyncClient, url: str, handle: Handle) -> None:
    async with aconnect_sse(client, "GET", url) as source:
        async for event in source.aiter_sse():
            await handle(event)


async def httpx_sse_loop(client: httpx.AsyncClient, url: str, handle: Handle) -> None:
    async with httpx_sse.aconnect_sse(client, "GET", url) as source:
        async for event in source.aiter_sse():
            await handle(event)


CONTENDERS: dict[str, Callable[[httpx.AsyncClient, str, Handle], Awaitable[None]]] = {
    BARE: bare_loop,
    "fastsse aiter_sse": drop_in,
    "httpx-sse": httpx_sse_loop,
}


@pytest.fixture(scope="module")
def client(loop: asyncio.AbstractEventLoop) -> Iterator[httpx.AsyncClient]:
    client = httpx.AsyncClient()
    yield client
    loop.run_until_complete(client.aclose())


@pytest.fixture(scope="module")
def server() -> Iterator[SSEServer]:
    with SSEServer(Response.stream_bytes(LLM.data, 16 * 1024)) as server:
        yield server


@pytest.fixture
def consumers(client: httpx.AsyncClient, server: SSEServer) -> dict[str, Consume]:
    """Every contender reading the server's stream with the one shared client."""
    return {
        name: functools.partial(consume, client, server.url) for name, consume in CONTENDERS.items()
    }


@pytest.mark.parametrize("contender", list(CONTENDERS))
def test_drop_in(
    take_turns: Callable[..., None], consumers: dict[str, Consume], contender: str
) -> None:
    take_turns(CORPUS, LLM, {contender: consumers[contender]})


def test_drop_in_interleaved(
    take_turns: Callable[..., None], consumers: dict[str, Consume]
) -> None:
    """The same contenders taking turns, round after round; each one's best round goes to the
    summary."""
    take_turns(INTERLEAVED, LLM, consumers)
