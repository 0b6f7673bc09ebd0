"""The clients compared end to end over HTTP, by ``fastsse demo`` and ``benches/``: each reads
one event stream with a shared ``httpx.AsyncClient``, awaits a handler for every event (as an
application's would be; by default ``on_event``) and returns how many events it got."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Callable

import httpx

from fastsse._fastsse import Parser
from fastsse._io.stream import AsyncEventStream
from fastsse._pure import PureParser

#: The per-event async handler.
Handler = Callable[[Any], Awaitable[None]]
#: Reads the stream at a URL with the given client, awaiting the handler with each event;
#: returns the event count.
StreamClient = Callable[..., Awaitable[int]]


async def on_event(event: Any) -> None:
    """The default per-event handler: it reads the event's fields."""
    event.event, event.data, event.id  # noqa: B018


async def fastsse_events(client: httpx.AsyncClient, url: str, on_event: Handler = on_event) -> int:
    """``async for event in stream``: one event at a time."""
    count = 0
    async with AsyncEventStream(url, client=client, reconnect=False) as stream:
        async for event in stream:
            await on_event(event)
            count += 1
    return count


async def fastsse_batches(client: httpx.AsyncClient, url: str, on_event: Handler = on_event) -> int:
    """``stream.batches()``: a list of events per chunk received."""
    count = 0
    async with AsyncEventStream(url, client=client, reconnect=False) as stream:
        async for batch in stream.batches():
            for event in batch:
                await on_event(event)
            count += len(batch)
    return count


async def parser_loop(client: httpx.AsyncClient, url: str, on_event: Handler = on_event) -> int:
    """The bare ``fastsse.Parser`` over ``response.aiter_bytes()``: what a stream costs at
    least (no reconnect, no timeouts, no stats)."""
    return await _parse_bytes(Parser(), client, url, on_event)


async def parser_loop_raw(client: httpx.AsyncClient, url: str, on_event: Handler = on_event) -> int:
    """The bare loop reading the body as fastsse's stream does when it has no content coding:
    ``aiter_raw()``, without httpx's pass-through decoding layer."""
    return await _parse_bytes(Parser(), client, url, on_event, raw=True)


async def pure_python(client: httpx.AsyncClient, url: str, on_event: Handler = on_event) -> int:
    """httpx's bytes through fastsse's pure-Python parser."""
    return await _parse_bytes(PureParser(), client, url, on_event)


async def _parse_bytes(
    parser: Parser | PureParser,
    client: httpx.AsyncClient,
    url: str,
    on_event: Handler,
    *,
    raw: bool = False,
) -> int:
    count = 0
    async with client.stream("GET", url) as response:
        async for chunk in response.aiter_raw() if raw else response.aiter_bytes():
            for event in parser.feed(chunk):
                await on_event(event)
                count += 1
    return count


async def httpx_sse(client: httpx.AsyncClient, url: str, on_event: Handler = on_event) -> int:
    """httpx-sse's documented way: ``aconnect_sse`` and ``aiter_sse``."""
    from httpx_sse import aconnect_sse

    count = 0
    async with aconnect_sse(client, "GET", url) as source:
        async for event in source.aiter_sse():
            await on_event(event)
            count += 1
    return count


async def httpx_bytes(client: httpx.AsyncClient, url: str, on_event: Handler = on_event) -> int:
    """httpx reading the body with no parsing at all: the ceiling. Counts no events (-1)."""
    async with client.stream("GET", url) as response:
        async for _ in response.aiter_bytes():
            pass
    return -1


def httpx_sse_installed() -> bool:
    try:
        import httpx_sse  # noqa: F401
    except ImportError:
        return False
    return True
