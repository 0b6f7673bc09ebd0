"""``fastsse.merge(*streams)``: the events of many async streams through one iterator.

Each stream is read by a task of its own (a reader), which hands over one batch (the events of
one chunk) at a time and reads the next chunk only once the merge has taken that batch. The
merge takes the batches in the order the streams had them ready: a stream whose batch was just
taken gets in line behind every stream that is already waiting, so a busy stream cannot starve
the others (round-robin over the ready batches), and a slow consumer slows every stream alike
(one batch waits per stream: memory stays bounded).

Each stream keeps its own reconnects, backoff and Last-Event-ID: the merge only reads them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable

from fastsse._fastsse import Event
from fastsse._io.stream import AsyncEventStream

__all__ = ["Merge", "merge"]


class Merge(AsyncIterator["tuple[AsyncEventStream, Event]"]):
    """An async iterator of ``(stream, event)`` pairs over several streams; see ``merge``."""

    def __init__(self, streams: tuple[AsyncEventStream, ...]) -> None:
        if not streams:
            raise ValueError("merge() needs at least one stream")
        for stream in streams:
            if not isinstance(stream, AsyncEventStream):
                raise TypeError(f"merge() takes AsyncEventStreams, got {stream!r}")
        if len({id(stream) for stream in streams}) != len(streams):
            raise ValueError("merge() got the same stream twice: a stream has one reader")
        self.streams = streams
        #: Batches ready, in the order their streams had them ready; a stream's final error
        #: takes its place in that line, after the batches that came before it.
        self._ready: deque[tuple[AsyncEventStream, list[Event] | Exception]] = deque()
        #: A reader waits on its own before reading its next chunk.
        self._taken: dict[int, asyncio.Event] = {}
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._live = 0
        self._stream: AsyncEventStream | None = None
        self._batch: list[Event] = []
        self._next = 0
        self._closed = False

    def __aiter__(self) -> Merge:
        return self

    async def __aenter__(self) -> Merge:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __anext__(self) -> tuple[AsyncEventStream, Event]:
        while True:
            if self._next < len(self._batch):
                event = self._batch[self._next]
                self._next += 1
                assert self._stream is not None
                return self._stream, event
            self._stream, self._batch = await self._next_batch()
            self._next = 0

    def batches(self) -> _Batches:
        """The same, a batch (one chunk's events) at a time: ``(stream, events)`` pairs. Closing
        it closes the merge."""
        return _Batches(self)

    async def _next_batch(self) -> tuple[AsyncEventStream, list[Event]]:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._wake is None:
                self._start()
            if self._ready:
                stream, batch = self._ready.popleft()
                if isinstance(batch, Exception):
                    await self.aclose()
                    raise batch
                self._taken[id(stream)].set()
                return stream, batch
            if self._live == 0:
                self._closed = True
                raise StopAsyncIteration
            wake = self._wake
            assert wake is not None
            wake.clear()
            await wake.wait()

    def _start(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "fastsse.merge() runs on asyncio (or uvloop): it reads each stream in an "
                "asyncio task; on trio, read the streams in a nursery of your own"
            ) from None
        self._wake = asyncio.Event()
        self._live = len(self.streams)
        for stream in self.streams:
            taken = self._taken[id(stream)] = asyncio.Event()
            self._tasks.append(asyncio.ensure_future(self._read(stream, taken)))

    async def _read(self, stream: AsyncEventStream, taken: asyncio.Event) -> None:
        wake = self._wake
        assert wake is not None
        batches = stream.batches()
        try:
            async for batch in batches:
                taken.clear()
                self._ready.append((stream, batch))
                wake.set()
                await taken.wait()
        except Exception as error:
            # The stream's final error (its reconnects gave up, or a hook raised): the merge
            # raises it in its turn, after the batches before it, however busy the others are.
            self._ready.append((stream, error))
        finally:
            self._live -= 1
            wake.set()
            await batches.aclose()

    async def aclose(self) -> None:
        """Close the merge and every one of its streams (their connections too)."""
        self._closed = True
        self._batch, self._ready = [], deque()
        for stream in self.streams:
            await stream.aclose()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class _Batches(AsyncIterator["tuple[AsyncEventStream, list[Event]]"]):
    __slots__ = ("_merge",)

    def __init__(self, merge: Merge) -> None:
        self._merge = merge

    def __anext__(self) -> Awaitable[tuple[AsyncEventStream, list[Event]]]:
        merge = self._merge
        if merge._next < len(merge._batch):
            # What iterating event by event left of its batch comes first.
            assert merge._stream is not None
            rest, merge._batch = merge._batch[merge._next :], []
            return _ready(merge._stream, rest)
        return merge._next_batch()

    async def aclose(self) -> None:
        await self._merge.aclose()


async def _ready(
    stream: AsyncEventStream, batch: list[Event]
) -> tuple[AsyncEventStream, list[Event]]:
    return stream, batch


def merge(*streams: AsyncEventStream) -> Merge:
    """The events of ``streams`` as one async iterator of ``(stream, event)`` pairs.

    ``async with fastsse.merge(a, b, c) as merged: async for stream, event in merged: ...``

    - Fair: the streams are served round-robin over the batches (one chunk's events) they have
      ready, so a busy stream cannot starve a quiet one; a slow consumer slows every stream
      (each has at most one batch waiting: memory stays bounded).
    - Each stream keeps its own reconnects, backoff, ``last_event_id`` and ``stats``. A
      stream's ``last_event_id`` may run a batch ahead of what the merge handed out (its
      reader reads on while the others are served): to checkpoint, keep the ids of the events
      you handled, as ``Consumer`` does.
    - A stream that ends (a 204, a stream that does not reconnect) leaves the merge, which
      ends when every stream has ended. A stream's final error (``RetriesExhausted``, a 4xx)
      is raised by the merge after the events that came before it, and closes the others.
    - Closing the merge (``aclose()``, or leaving ``async with``) closes every stream: the
      merge owns them. Break out of the loop and keep the merge to pause instead.

    Runs on asyncio (and uvloop): each stream is read by a task of its own.
    """
    return Merge(streams)
