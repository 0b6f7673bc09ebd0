"""``async for event in stream``: the events of each received batch, one by one.

An async generator would do, but then every event costs an ``asend``: a frame resumed and
suspended, and a value wrapped to cross the ``yield``. Most events are already in memory (a
16 KiB chunk brings ~100 LLM events), so this iterator's ``__anext__`` returns one of them
without suspending and only awaits the stream when the batch at hand is used up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator
from typing import Any, Protocol

from fastsse._fastsse import Event


class _Stream(Protocol):
    """What the iterator uses of an AsyncEventStream."""

    _backlog: deque[Event]
    _delivered_id: str
    _machine: Any  # a StreamMachine: its ``closed``

    def batches(self) -> AsyncGenerator[list[Event], None]: ...


class AsyncEvents:
    """An async iterator over a stream's events; ``aclose()`` ends its iteration of the stream
    (not the stream), as closing an async generator would."""

    __slots__ = ("_backlog", "_batches", "_machine", "_stream")

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream
        self._machine = stream._machine
        # Events received and not handed out yet, kept on the stream: the next iteration of
        # the stream (after a ``break``) starts with them.
        self._backlog = stream._backlog
        self._batches = stream.batches()

    def __aiter__(self) -> AsyncEvents:
        return self

    async def __anext__(self) -> Event:
        backlog = self._backlog
        while not backlog:
            backlog.extend(await self._batches.__anext__())  # StopAsyncIteration: the end
        if self._machine.closed:  # Closed mid-batch: not one event more.
            await self._batches.aclose()
            raise StopAsyncIteration
        event = backlog.popleft()
        self._stream._delivered_id = event.id
        return event

    async def aclose(self) -> None:
        await self._batches.aclose()
