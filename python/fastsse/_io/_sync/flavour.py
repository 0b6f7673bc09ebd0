"""What only the sync driver has, beside ``stream.py`` (generated from ``_async/stream.py``):
events one by one from a generator, and the waker that ends a blocked call from another thread
(a ``threading.Event`` for the wait before a reconnect, the socket shut down for a read or a
wait for response headers). ``_async/flavour.py`` has the same names for the async driver."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from typing import Any, Callable, TypeVar

import httpx

from fastsse._fastsse import Event
from fastsse._io.base import StreamBase, finished
from fastsse._io.clients import SyncClient
from fastsse._io.http import (
    Socket,
    body,
    connection_pool,
    pooled_socket,
    shutdown,
    socket_of,
)
from fastsse.protocol import StreamMachine

__all__ = ["SyncFlavour", "SyncWaker", "close_response"]

_T = TypeVar("_T")

#: The trace events of httpcore (and httpcore2) that name the socket a request goes out on: a
#: new connection's, or (a keep-alive connection reused from the pool makes no connect event)
#: the start of an HTTP/1.1 request.
_CONNECTED = ("connection.connect_tcp.complete", "connection.start_tls.complete")
_SENDING = "http11.send_request_headers.started"


class SyncWaker:
    """Ends what a sync stream's reader is blocked in, from any thread: the wait before a
    reconnect (a ``threading.Event``), a read or a wait for response headers (the socket shut
    down: found from httpcore's trace events before the headers arrive)."""

    __slots__ = ("_callers_trace", "_event", "_machine", "_pool", "_reader", "socket")

    def __init__(self, machine: StreamMachine) -> None:
        self._machine = machine
        self._event = threading.Event()
        self._reader: int | None = None
        self._pool: object = None
        self._callers_trace: Callable[[str, dict[str, Any]], object] | None = None
        self.socket: Socket | None = None

    def start(self) -> None:
        """Called by the reader: its thread is the one that may close its connection loop."""
        self._reader = threading.get_ident()

    def wake(self) -> None:
        self._event.set()
        shutdown(self.socket)

    def sleep(self, seconds: float) -> None:
        """The wait before a reconnect, cut short by ``wake()``."""
        self._event.wait(seconds)

    def cancellable(self, value: _T) -> _T:
        """``value``: a blocking call cannot be wrapped; ``wake()`` ends it through the socket
        (see ``prepare``)."""
        return value

    def prepare(self, client: httpx.Client, request: httpx.Request) -> None:
        """Before ``request`` is sent: a wake from now on is for it, and httpcore's trace hook
        tells its socket as soon as it is known (the caller's own trace is called too)."""
        self._event.clear()
        self._pool = connection_pool(client, request.url)
        self._callers_trace = request.extensions.get("trace")
        request.extensions["trace"] = self._trace

    def _trace(self, name: str, info: dict[str, Any]) -> None:
        if name in _CONNECTED or name == _SENDING:
            if name == _SENDING:
                self.socket = pooled_socket(self._pool, info.get("request")) or self.socket
            else:
                self.socket = socket_of(info.get("return_value"))
            if self._machine.closed or self._machine.interrupted:
                shutdown(self.socket)  # close() or interrupt() came before the socket was known.
        if self._callers_trace is not None:
            self._callers_trace(name, info)

    def read(self, response: httpx.Response) -> Iterator[bytes]:
        """The body's chunks: ``wake()`` ends a blocked read by shutting the socket down."""
        return body(response)

    def may_close(self, loop: Generator[list[Event], None, None]) -> bool:
        """Whether ``close()`` may close ``loop`` itself: a loop that another thread runs, or
        holds suspended, is closed by that thread (its read was woken by the shutdown, and it
        sees ``closed`` at its next step)."""
        return self._reader == threading.get_ident() and not getattr(loop, "gi_running", False)


def close_response(response: httpx.Response) -> None:
    """Closes ``response`` (the async driver's shields its close from cancellation)."""
    response.close()


class SyncFlavour(StreamBase[httpx.Client, SyncClient]):
    """The sync stream's own: events one by one from a generator over ``batches()``."""

    _waker: SyncWaker
    _loop: Generator[list[Event], None, None] | None = None
    _events: Generator[Event, None, None] | None = None
    _reader_noun = "thread"

    def _new_waker(self) -> SyncWaker:
        return SyncWaker(self._machine)

    def batches(self) -> Generator[list[Event], None, None]:
        raise NotImplementedError  # stream.py's

    def __next__(self) -> Event:
        """The next event (``next(stream)``); raises StopIteration at the end."""
        if self._events is None or finished(self._events):
            self._events = self.__iter__()
        return next(self._events)

    def __iter__(self) -> Generator[Event, None, None]:
        backlog = self._filled_backlog()
        machine = self._machine
        batches = self.batches()
        try:
            for batch in batches:
                backlog.extend(batch)
                while backlog and not machine.closed:
                    yield self._next_from_backlog()
                if machine.closed:
                    return  # what is left stays in the backlog, delivered to nobody
        finally:
            batches.close()

    def _has_pending(self) -> bool:
        """Whether events a ``break`` left wait to be handed out first."""
        return bool(self._backlog)

    def _take_pending(self) -> list[Event]:
        return self._take_backlog()

    def _end_events(self, events: Generator[Event, None, None]) -> None:
        """Closes this iteration's own event generator (the backlog keeps what it held)."""
        events.close()

    def _close_events(self, loop: Generator[list[Event], None, None] | None) -> None:
        """Nothing: a sync iteration's events are in the backlog, which ``__iter__`` stops
        handing out once the stream is closed."""
