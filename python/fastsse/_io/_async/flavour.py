"""What only the async driver has, beside its source (``stream.py``), which scripts/unasync.py
turns into the sync driver: events handed out one by one through the Rust BatchIterator, a
plain ``close()`` that any thread may call, and the waker that ends a wait from another task or
thread (a cancel scope, cancelled in the event loop's own thread). ``_sync/flavour.py`` has the
same names for the sync driver."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Coroutine, Generator
from typing import Any, Callable, TypeVar

import anyio
import httpx

from fastsse._fastsse import BatchIterator, Event
from fastsse._io.base import StreamBase, Woken
from fastsse._io.clients import AsyncClient
from fastsse._io.http import Socket, abody, shutdown
from fastsse._io.transport import sendable_directly
from fastsse.protocol import StreamMachine

__all__ = ["AsyncFlavour", "AsyncWaker", "Closing", "close_response", "threadsafe_scheduler"]

_T = TypeVar("_T")


def threadsafe_scheduler() -> Callable[[Callable[[], None]], object]:
    """A non-blocking way to run a callback in the current event loop from another thread."""
    try:
        return asyncio.get_running_loop().call_soon_threadsafe
    except RuntimeError:
        # Not asyncio, so trio: anyio's only other backend.
        trio: Any = importlib.import_module("trio")
        run_sync_soon: Callable[[Callable[[], None]], object] = (
            trio.lowlevel.current_trio_token().run_sync_soon
        )
        return run_sync_soon


#: On asyncio (3.11+, whose tasks count their cancellations) a wait is cancelled through its
#: task: an anyio cancel scope would keep state for each task that ever entered one (a weak
#: dictionary entry, ~300 bytes per idle stream).
_TASK_CANCELLING = sys.version_info >= (3, 11)


class AsyncWaker:
    """Ends what an async stream's reader waits in, from any task or thread: ``wake()`` cancels
    the wait in the reader's event loop (its task on asyncio, an anyio cancel scope on trio),
    and shuts the socket in use down (which ends a blocked read at once)."""

    __slots__ = ("_loop", "_machine", "_scope", "_thread", "_woke", "socket")

    def __init__(self, machine: StreamMachine) -> None:
        self._machine = machine
        #: What waits now: the reader's task (asyncio), or an anyio cancel scope (trio).
        self._scope: asyncio.Task[Any] | anyio.CancelScope | None = None
        #: Whether wake() cancelled the waiting task: its CancelledError is ours to absorb.
        self._woke = False
        self._thread: int | None = None
        #: The reader's event loop: asyncio's, or trio's token.
        self._loop: Any = None
        self.socket: Socket | None = None

    def start(self) -> None:
        """Called by the reader in its event loop: where ``call()`` runs what another thread
        asks for."""
        self._thread = threading.get_ident()
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            # Not asyncio, so trio: anyio's only other backend.
            self._loop = importlib.import_module("trio").lowlevel.current_trio_token()

    def call(self, function: Callable[[], None]) -> None:
        """Runs ``function`` in the reader's thread: now when that is this one (or no reader
        started), else soon, in its event loop (the objects of a wait belong to their loop)."""
        loop = self._loop
        if loop is None or self._thread == threading.get_ident():
            function()
            return
        with contextlib.suppress(RuntimeError):  # The loop is closed: nothing waits in it.
            if isinstance(loop, asyncio.AbstractEventLoop):
                loop.call_soon_threadsafe(function)
            else:
                loop.run_sync_soon(function)

    def wake(self) -> None:
        shutdown(self.socket)
        self.call(self._cancel)

    def _cancel(self) -> None:
        # Run in the reader's thread: the wait it is in now, if any; a reader between two
        # waits sees what close() or interrupt() told the machine before its next one.
        scope = self._scope
        if isinstance(scope, asyncio.Task):
            if scope is asyncio.current_task():
                # Called by the reader itself, in a hook or an event hook of the request: the
                # task is running, not waiting. Cancelled once it waits, if it still does.
                self._loop.call_soon(self._cancel)
            elif not self._woke:
                self._woke = True
                scope.cancel()
        elif scope is not None:
            scope.cancel()

    async def sleep(self, seconds: float) -> None:
        """The wait before a reconnect, cut short by ``wake()``."""
        with contextlib.suppress(Woken):
            await self.cancellable(anyio.sleep(seconds))

    async def cancellable(self, awaitable: Awaitable[_T]) -> _T:
        """Awaits ``awaitable`` so that ``wake()`` from another task or thread interrupts it
        (Woken)."""
        machine = self._machine
        if machine.closed or machine.interrupted:
            if isinstance(awaitable, Coroutine):
                awaitable.close()  # Never awaited: close it so Python does not warn.
            raise Woken
        if not (_TASK_CANCELLING and isinstance(self._loop, asyncio.AbstractEventLoop)):
            with anyio.CancelScope() as scope:
                self._scope = scope
                try:
                    return await awaitable
                finally:
                    self._scope = None
            # Only reached when wake() cancelled the scope, which absorbed the cancellation.
            raise Woken
        # On asyncio: wake() cancels the task while it waits here, and the cancellation is
        # absorbed here, unless the task was cancelled from elsewhere too (then it goes on, as
        # asyncio.timeout() does).
        task = asyncio.current_task()
        assert task is not None
        self._scope = task
        try:
            return await awaitable
        except asyncio.CancelledError:
            if not self._woke:
                raise
            self._woke = False
            if task.uncancel() > 0:  # type: ignore[attr-defined,unused-ignore]
                raise
            raise Woken from None
        finally:
            self._scope = None
            if self._woke:  # Cancelled, and the awaitable swallowed the cancellation.
                self._woke = False
                task.uncancel()  # type: ignore[attr-defined,unused-ignore]

    def prepare(self, client: httpx.AsyncClient, request: httpx.Request) -> None:
        """Nothing to prepare: the wait for the response headers is ``cancellable``."""

    def read(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """The body's chunks, each read interruptible by ``wake()``."""
        if self.socket is not None:
            # wake() shuts the socket down, which ends a blocked read: a cancel scope per
            # read (or a generator layer per chunk) would cost more than parsing the chunk.
            return abody(response)
        return self._read_cancellable(abody(response))

    async def _read_cancellable(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``chunks``, each read in a cancel scope that ``wake()`` cancels: for a transport
        whose socket fastsse cannot reach."""
        chunks = chunks.__aiter__()
        while True:
            try:
                yield await self.cancellable(chunks.__anext__())
            except StopAsyncIteration:
                return

    def may_close(self, loop: AsyncGenerator[list[Event], None]) -> bool:
        """Whether ``aclose()`` may close ``loop`` itself: a loop running in another task stops
        at its cancelled scope instead."""
        return not getattr(loop, "ag_running", False)


async def close_response(response: httpx.Response) -> None:
    """Closes ``response``, also in a cancelled task: its connection must be released."""
    with anyio.CancelScope(shield=True):
        await response.aclose()


class AsyncFlavour(StreamBase[httpx.AsyncClient, AsyncClient]):
    """The async stream's own: events one by one through the Rust BatchIterator (the per-event
    fast path), and ``close()`` as a plain method beside the ``aclose()`` coroutine."""

    _waker: AsyncWaker
    _loop: AsyncGenerator[list[Event], None] | None = None
    #: The event-by-event iterator, the same for every iteration: a ``break`` leaves the rest
    #: of its batch in it for the next one. Replaced once it was closed.
    _events: BatchIterator[Event] | None = None
    _event_batches: _EventBatches | None = None
    _reader_noun = "task"

    def _new_waker(self) -> AsyncWaker:
        return AsyncWaker(self._machine)

    def _new_client_options(self) -> dict[str, Any]:
        """The shared client's options; ``direct``: whether it may be aiohttp's session itself
        (``fastsse._io.direct``), when the aiohttp extra is installed and the loop is asyncio."""
        options = super()._new_client_options()
        options["direct"] = sendable_directly(
            self._machine.url, self._request_options, self._send_options
        )
        return options

    def _connection_loop(self) -> AsyncGenerator[list[Event], None]:
        raise NotImplementedError  # stream.py's

    async def aclose(self) -> None:
        raise NotImplementedError  # stream.py's

    @property
    def last_event_id(self) -> str:
        """The id to resume from: that of the last event handed out, as the spec keeps it."""
        events = self._events
        if events is not None:
            buffered = events.buffered
            if buffered:
                batch = self._batch
                return batch[len(batch) - buffered - 1].id
        return self._delivered_id if self._backlog else self._machine.parser.last_event_id

    def __anext__(self) -> Awaitable[Event]:
        """The next event (``await anext(stream)``); raises StopAsyncIteration at the end."""
        return self.__aiter__().__anext__()

    def __aiter__(self) -> BatchIterator[Event]:
        """The events one by one, each handed out without suspending while its chunk's batch
        lasts (an async generator's step per event would cost as much as parsing it).

        Every iteration gets the stream's one iterator, so that the events a ``break`` leaves
        come first in the next. Its ``aclose()`` ends that iteration only: the stream keeps the
        events it held, and the connection."""
        if getattr(self._loop, "ag_running", False):
            raise self._busy()
        events = self._events
        if events is None or self._event_batches is None or self._event_batches.closed:
            # The iterator was closed: its events go first in the new one.
            self._stash_events()
            batches = self._event_batches = _EventBatches(self)
            events = self._events = BatchIterator(batches)
        return events

    def close(self) -> Awaitable[None]:
        """Close the stream and its connection now; safe from any thread or task, and
        idempotent: the task reading it ends at once, and nothing is handed out after it.

        Awaiting what it returns (``await stream.close()``, as openai's ``AsyncStream`` has it)
        is ``await stream.aclose()``, which also waits for the connection to be released;
        without the await, the reading task releases it."""
        self._machine.close()
        self._waker.wake()
        self._waker.call(self._stash_events)
        return Closing(self.aclose)

    def _has_pending(self) -> bool:
        """Whether events a ``break`` left wait to be handed out first."""
        return bool(self._backlog) or (self._events is not None and self._events.buffered > 0)

    def _take_pending(self) -> list[Event]:
        self._stash_events()
        batch = self._batch = self._take_backlog()
        return batch

    async def _end_events(self, events: BatchIterator[Event]) -> None:
        """Not closed: the events a ``break`` leaves in the stream's one event iterator are the
        next iteration's."""

    def _stash_events(self) -> None:
        """Moves the events that ``_events`` holds to the backlog, which the next batch of any
        iteration is, and keeps the id of the last one handed out."""
        events = self._events
        if events is not None and events.buffered:
            self._delivered_id = self.last_event_id
            self._filled_backlog().extend(events.clear())

    async def _close_events(self, loop: AsyncGenerator[list[Event], None] | None) -> None:
        """``aclose()``'s end of the event iterator: a reader in the middle of a batch gets
        nothing more; the events it did not get stay in the backlog (and last_event_id is the
        last one it got)."""
        events = self._events
        if events is not None:
            self._stash_events()
            self._events = None
            if not getattr(loop, "ag_running", False):
                await events.aclose()


class Closing:
    """What an async stream's plain ``close()`` returns (``AsyncEventStream``'s, and
    ``fastsse.llm``'s): awaiting it is ``aclose()``, and leaving it unawaited (from a thread, a
    callback) is no mistake: no coroutine exists until then."""

    __slots__ = ("_aclose",)

    def __init__(self, aclose: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._aclose = aclose

    def __await__(self) -> Generator[Any, None, None]:
        return self._aclose().__await__()


class _EventBatches:
    """Where an async stream's event iterator (a BatchIterator) gets its batches: the backlog
    a ``break`` left, then the connection loop's, whose step it awaits itself (an async
    generator in between would cost a step of its own per chunk). Closing it ends that
    iterator only, not the connection."""

    __slots__ = ("_stream", "closed")

    def __init__(self, stream: AsyncFlavour) -> None:
        self._stream = stream
        self.closed = False

    def __aiter__(self) -> _EventBatches:
        return self

    def __anext__(self) -> Awaitable[list[Event]]:
        stream = self._stream
        loop = stream._loop  # None once it finished (see _connection_loop)
        if loop is not None and not stream._backlog:
            return loop.__anext__()  # Once per chunk: the rest is rare.
        if stream._machine.closed:
            if stream._machine.error is not None:  # A failed stream stays failed.
                raise stream._machine.error
            raise StopAsyncIteration
        if stream._backlog:
            batch = stream._batch = stream._take_backlog()
            return _ready(batch)
        loop = stream._loop_to_run(stream._connection_loop)
        if loop is None:
            raise StopAsyncIteration
        return loop.__anext__()

    async def aclose(self) -> None:
        """Ends this iterator's iteration only. (A loop that ``aclose()`` from another task
        could not close, because it was reading, ends by itself at its next chunk.)"""
        self.closed = True


async def _ready(value: _T) -> _T:
    return value
