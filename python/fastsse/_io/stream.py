"""Event streams on httpx that reconnect, resume with Last-Event-ID and never hang.

``StreamMachine`` (``fastsse.protocol``) makes every decision and does no I/O. ``AsyncEventStream``
and ``EventStream`` are its drivers: they move bytes and wait, and tell the machine what
happened; ``_http.py`` translates httpx's errors into the machine's words.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import math
import re
import threading
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Coroutine,
    Generator,
    Mapping,
    Sequence,
)
from typing import Any, Callable, Generic, Literal, TypeVar, Union, cast

import anyio
import httpx

from fastsse._fastsse import DEFAULT_MAX_EVENT_SIZE, BatchIterator, Event
from fastsse._io import pool as _pool
from fastsse._io import transport as _transport
from fastsse._io.http import (
    ASYNC_CLIENTS,
    SYNC_CLIENTS,
    Socket,
    abody,
    accepts,
    add_cookies,
    aread_preview,
    body,
    classes,
    classify,
    read_preview,
    request_timeout,
    response_socket,
    shutdown,
    socket_of,
)
from fastsse._io.transport import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
from fastsse._policy import Retry
from fastsse.protocol import (
    NOT_JSON,
    STOP,
    Fault,
    FaultKind,
    JSONErrorHandler,
    Send,
    StreamMachine,
    StreamStats,
    Verdict,
    Wait,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "JSON",
    "AsyncEventStream",
    "EventStream",
    "Fault",
    "FaultKind",
    "StreamStats",
]


#: A JSON value, as ``stream.json()`` yields them.
JSON = Union[dict[str, "JSON"], list["JSON"], str, int, float, bool, None]
HeaderTypes = Union[
    httpx.Headers,
    Mapping[str, str],
    Mapping[bytes, bytes],
    Sequence[tuple[str, str]],
    Sequence[tuple[bytes, bytes]],
]
QueryParamTypes = Union[httpx.QueryParams, Mapping[str, Any], Sequence[tuple[str, Any]], str]
CookieTypes = Union[httpx.Cookies, Mapping[str, str], http.cookiejar.CookieJar]
AuthTypes = Union[tuple[str, str], httpx.Auth, Callable[[httpx.Request], httpx.Request]]
TimeoutTypes = Union[float, httpx.Timeout]
Content = Union[str, bytes, None]

_T = TypeVar("_T")
_Client = TypeVar("_Client", httpx.Client, httpx.AsyncClient)
_Loop = TypeVar("_Loop")


class _Woken(Exception):
    """``aclose()`` or ``interrupt()`` ended what the reader was waiting for (the machine knows
    which)."""


class _StreamBase(Generic[_Client]):
    """Construction, state and properties shared by the sync and async streams."""

    #: The socket of the connection in use, shut down by close() to wake a blocked read.
    _socket: Socket | None = None
    #: The connection loop (a generator): requests, responses, parsing, reconnects.
    _loop: Any = None
    _client_classes: tuple[type, ...] = ()

    def __init__(
        self,
        url: httpx.URL | str,
        *,
        client: _Client | None = None,
        method: str = "GET",
        headers: HeaderTypes | None = None,
        params: QueryParamTypes | None = None,
        json: Any = None,
        content: Content = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | None = None,
        timeout: TimeoutTypes | None = None,
        follow_redirects: bool | None = None,
        extensions: Mapping[str, Any] | None = None,
        last_event_id: str = "",
        retry: Retry | None = None,
        reconnect: bool | None = None,
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
        connect_timeout: float | None = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        on_oversize: Literal["error", "skip"] = "error",
        on_connect: Callable[[httpx.Response], None] | None = None,
        on_fault: Callable[[Fault, float | None], None] | None = None,
        on_comment: Callable[[str], None] | None = None,
    ) -> None:
        """Open nothing yet: the first iteration sends the request.

        The request (each keyword as httpx's ``client.stream()`` takes it; the stream sends it
        again, with Last-Event-ID, on every reconnect):

        - ``url``: the event stream's URL (relative to the client's ``base_url`` if it has one).
        - ``client``: your own ``httpx.Client`` (``AsyncClient`` for ``AsyncEventStream``),
          whose timeouts, redirect policy, auth, cookies, headers and transport apply; it is
          not closed for you. Without one the stream shares a client (``DEFAULT_CONNECT_TIMEOUT``,
          redirects followed, no cookie jar) with up to 99 other such streams of its event loop.
        - ``method`` (``"GET"``), ``headers``, ``params``, ``json``, ``content``, ``data``,
          ``files``, ``cookies``, ``extensions``: as in httpx. ``Accept: text/event-stream``
          and ``Cache-Control: no-cache`` are added unless given; a ``Last-Event-ID`` header
          is where the stream starts.
        - ``auth``, ``follow_redirects``, ``timeout``: as in httpx; None (the default) keeps
          the client's.

        Reconnecting:

        - ``reconnect``: whether to reconnect after the connection ends; None (the default)
          means yes for GET and no for other methods, whose side effects a re-sent request
          would repeat (a stream that does not reconnect raises StreamInterruptedError when it
          breaks mid-stream).
        - ``retry``: the backoff policy (``fastsse.Retry``: delays, ``max_attempts``).
        - ``last_event_id``: the id to resume after, sent on the first request.
        - ``read_timeout``: seconds without a byte (comments count) after which the connection
          counts as dead and is replaced; ``DEFAULT_READ_TIMEOUT`` (300 s) by default, whatever
          the client's read timeout; None waits for ever.
        - ``connect_timeout``: seconds to connect; None (the default) keeps the client's.

        Limits and hooks:

        - ``max_event_size``, ``on_oversize``: an event larger than this many bytes raises
          EventTooLargeError (``"error"``) or is counted in ``stats.oversized`` and skipped
          (``"skip"``); memory stays bounded either way.
        - ``on_connect``: ``on_connect(response)`` is called when a response is accepted as an
          event stream.
        - ``on_fault``: ``on_fault(fault, delay)`` is called when a connection attempt or a
          connection ends, with a ``Fault`` (kind, message, error, response, attempt);
          ``delay`` is the wait before the next attempt (0 after ``interrupt()``), or None
          when the stream ends with an error.
        - ``on_comment``: ``on_comment(text)`` is called with each comment line the server
          sends, such as heartbeats (``: ping`` gives ``"ping"``: the text after the colon and
          one space, cut to ``max_event_size`` bytes), after the events of the same chunk were
          handed out. Without it, comments are dropped as they arrive, at no cost.

        The hooks run in the task or thread that iterates, before the stream goes on: keep
        them short. An exception a hook raises ends the stream with that exception.

        Every failed attempt and every reconnect is also logged at WARNING on the ``fastsse``
        logger. Wrong types raise TypeError, wrong values ValueError, here and not later.
        """
        _validate(
            self._client_classes,
            url=url,
            client=client,
            method=method,
            json=json,
            content=content,
            data=data,
            files=files,
            auth=auth,
            timeout=timeout,
            follow_redirects=follow_redirects,
            extensions=extensions,
            last_event_id=last_event_id,
            retry=retry,
            reconnect=reconnect,
            read_timeout=read_timeout,
            connect_timeout=connect_timeout,
            on_oversize=on_oversize,
            on_connect=on_connect,
            on_fault=on_fault,
            on_comment=on_comment,
        )
        try:
            raw_headers = httpx.Headers(headers).raw
            httpx.QueryParams(cast(Any, params))
            if not isinstance(cookies, (Mapping, Sequence, http.cookiejar.CookieJar, type(None))):
                raise TypeError(f"got {cookies!r} as cookies")
            httpx.Cookies(cast(Any, cookies))
        except UnicodeEncodeError as error:
            raise ValueError(
                f"headers: a str value must be ASCII; pass bytes for any other value ({error})"
            ) from None
        except (TypeError, ValueError, AttributeError) as error:
            raise TypeError(
                "headers, params and cookies must each be a mapping or a sequence of "
                f"(name, value) pairs ({error})"
            ) from None
        if client is not None:
            _transport.warn_if_resending(client, f"{method.upper()} {url}")
        self._machine = StreamMachine(
            url,
            method=method,
            headers=raw_headers,
            last_event_id=last_event_id,
            retry=retry,
            reconnect=reconnect,
            read_timeout=read_timeout,
            max_event_size=max_event_size,
            on_oversize=on_oversize,
            on_connect=on_connect,
            on_fault=on_fault,
            on_comment=on_comment,
        )
        self._request_options: dict[str, Any] = {
            key: value
            for key, value in (
                ("params", params),
                ("json", json),
                ("content", content),
                ("data", data),
                ("files", files),
                ("extensions", extensions),
            )
            if value is not None
        }
        self._cookies = cookies
        self._send_options: dict[str, Any] = {}
        if auth is not None:
            self._send_options["auth"] = auth
        if follow_redirects is not None:
            self._send_options["follow_redirects"] = follow_redirects
        # A Timeout of the client's library (httpx2's too) is kept: only its fields are read.
        self._timeout: Any = timeout
        if timeout is not None and not isinstance(timeout, classes("Timeout")):
            self._timeout = httpx.Timeout(timeout)
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._client: _Client | None = client
        self._owns_client = client is None
        # Events of a received batch not yet handed out one by one: iterating again (after a
        # ``break``) starts with them, so that none is skipped.
        self._backlog: deque[Event] = deque()
        self._delivered_id = last_event_id or self._machine.parser.last_event_id

    @property
    def last_event_id(self) -> str:
        """The id to resume from: that of the last event handed out, as the spec keeps it."""
        return self._delivered_id if self._backlog else self._machine.parser.last_event_id

    @property
    def stats(self) -> StreamStats:
        """Counters of events, bytes, connections, reconnects, errors, drops."""
        return self._machine.stats

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._machine.closed

    @property
    def response(self) -> httpx.Response | None:
        """The latest response: its ``status_code``, ``headers`` and ``url`` (after
        redirects). None until the first response arrives; it stays the last one received
        while the stream reconnects."""
        response: httpx.Response | None = self._machine.response_received
        return response

    def resume_from(self, last_event_id: str) -> None:
        """Resume after ``last_event_id``, as if the stream had been made with it: the first
        request sends it as Last-Event-ID (a ``Consumer`` with a checkpoint calls this with the
        stored ID). Only before the stream first connects; ValueError for an ID no event can
        have (with CR, LF or NUL)."""
        self._machine.resume_from(last_event_id)
        self._delivered_id = last_event_id

    def interrupt(self) -> None:
        """End the current connection (or backoff wait) and reconnect at once, resuming with
        Last-Event-ID. Safe from any thread or task. Raises StreamInterruptedError on a stream
        that does not reconnect."""
        self._machine.interrupt()
        self._unblock_reader()

    def _unblock_reader(self) -> None:
        """Ends what the reader is blocked in (a backoff wait, a read, a wait for headers), so
        that it sees at once what ``close()`` or ``interrupt()`` told the machine."""
        raise NotImplementedError

    def _new_client_options(self) -> dict[str, Any]:
        return {"timeout": DEFAULT_CONNECT_TIMEOUT, "follow_redirects": True}

    def _build_request(self, client: _Client, action: Send) -> httpx.Request:
        base = self._timeout if self._timeout is not None else client.timeout
        request = client.build_request(
            action.method,
            action.url,
            headers=action.headers,
            timeout=request_timeout(base, connect=self._connect_timeout, read=self._read_timeout),
            **self._request_options,
        )
        if self._cookies is not None:
            add_cookies(client, request, self._cookies)
        return request

    def _loop_to_run(self, start: Callable[[], _Loop]) -> _Loop | None:
        """The connection loop to iterate: the one in progress (a ``break`` leaves it open),
        else a new one from ``start``, else None when the stream is over. (A loop forgets
        itself when it ends, whichever way.)"""
        if self._loop is None:
            if self._machine.done or self._machine.closed:
                return None
            self._loop = start()
        loop: _Loop = self._loop
        return loop

    def _iteration_ended(self, loop: object, *, finished: bool) -> bool:
        """An iteration of ``loop`` ends: whether it must close the loop (``close()`` from
        another thread or task left that to the iteration that held it).

        A loop that ``finished`` without the stream being over was ended by an exception
        thrown into its read (a cancelled task, Ctrl-C), which also closed its connection: it
        is forgotten, so that the next iteration starts a new one and reconnects."""
        if self._loop is not loop:
            return False
        if finished or self._machine.closed:
            self._loop = None
        return self._machine.closed and not finished

    def _busy(self, reader: str) -> RuntimeError:
        machine = self._machine
        return RuntimeError(
            f"the stream from {machine.method} {machine.url} is already being iterated by "
            f"another {reader}: a stream has one reader at a time (fastsse.Consumer hands its "
            "events to several workers)"
        )

    def _next_from_backlog(self) -> Event:
        event = self._backlog.popleft()
        self._delivered_id = event.id
        return event

    def _take_backlog(self) -> list[Event]:
        batch = list(self._backlog)
        self._backlog.clear()
        return batch


class AsyncEventStream(_StreamBase[httpx.AsyncClient]):
    """An async Server-Sent Events stream that reconnects and resumes.

    ``async with AsyncEventStream(url) as stream: async for event in stream: ...``

    Also ``await anext(stream)``, ``stream.batches()`` (a list per chunk: the fastest),
    ``stream.json()``, ``stream.response``, ``stream.stats``, ``stream.last_event_id``,
    ``stream.interrupt()`` and ``aclose()`` (or ``close()``), from any task. The constructor's
    parameters are documented on ``__init__``.
    """

    _client_classes = ASYNC_CLIENTS

    _scope: anyio.CancelScope | None = None
    _loop: AsyncGenerator[list[Event], None] | None = None
    #: The event-by-event iterator, the same for every iteration: a ``break`` leaves the rest
    #: of its batch in it for the next one. Replaced once it was closed.
    _events: BatchIterator[Event] | None = None
    _event_batches: _EventBatches | None = None
    #: The batch handed out last, whole or (by ``_events``) event by event: the resume id is
    #: that of its event just before those ``_events`` still holds.
    _batch: Sequence[Event] = ()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def last_event_id(self) -> str:
        """The id to resume from: that of the last event handed out, as the spec keeps it."""
        events = self._events
        if events is not None:
            buffered = events.buffered
            if buffered:
                batch = self._batch
                return batch[len(batch) - buffered - 1].id
        return super().last_event_id

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
            raise self._busy("task")
        events = self._events
        if events is None or self._event_batches is None or self._event_batches.closed:
            # The iterator was closed: its events go first in the new one.
            self._stash_events()
            batches = self._event_batches = _EventBatches(self)
            events = self._events = BatchIterator(batches)
        return events

    async def json(self, *, on_error: JSONErrorHandler | None = None) -> AsyncGenerator[JSON, None]:
        """Each event's data decoded as JSON. An event that is not JSON is counted in
        ``stats.json_errors`` and passed to ``on_error`` (default: logged), and the stream
        goes on."""
        decode = self._machine.decode_event
        # Not closed when this ends: the events left after a break stay for the next iteration.
        async for event in self.__aiter__():
            value = decode(event, on_error)
            if value is not NOT_JSON:
                yield value

    async def json_batches(
        self, *, on_error: JSONErrorHandler | None = None
    ) -> AsyncGenerator[list[JSON], None]:
        """The events' data decoded as JSON, as lists, one per chunk received; see ``json``."""
        batches = self.batches()
        try:
            async for batch in batches:
                decoded = self._machine.decode_json(batch, on_error)
                if decoded:
                    yield decoded
        finally:
            await batches.aclose()

    async def batches(self) -> AsyncGenerator[list[Event], None]:
        """The events as lists, one per chunk received: the fastest way to consume.

        Every iteration of a stream continues where the last one stopped, on the same
        connection: a ``break`` leaves it open, and only ``aclose()`` closes it."""
        if getattr(self._loop, "ag_running", False):
            raise self._busy("task")
        loop = None
        try:
            while True:
                if self._backlog or (self._events is not None and self._events.buffered):
                    # Events a break left come first: before this iteration began, or while
                    # it was suspended (another iteration, event by event, broke mid-batch).
                    self._stash_events()
                    batch = self._batch = self._take_backlog()
                    yield batch
                    continue
                if loop is None:
                    loop = self._loop_to_run(self._connection_loop)
                    if loop is None:
                        return
                try:
                    batch = await loop.__anext__()
                except StopAsyncIteration:
                    return
                yield batch
        finally:
            if loop is not None and self._iteration_ended(loop, finished=_finished(loop)):
                await loop.aclose()

    def _stash_events(self) -> None:
        """Moves the events that ``_events`` holds to the backlog, which the next batch of any
        iteration is, and keeps the id of the last one handed out."""
        events = self._events
        if events is not None and events.buffered:
            self._delivered_id = self.last_event_id
            self._backlog.extend(events.clear())

    async def aclose(self) -> None:
        """Close the stream and its connection now; safe from any task, and idempotent."""
        self._machine.close()
        self._unblock_reader()
        loop = self._loop
        # A loop running in another task stops at the cancelled scope instead.
        if loop is not None and not getattr(loop, "ag_running", False):
            self._loop = None  # Closed here, not by an iteration.
            await loop.aclose()
        events = self._events
        if events is not None:
            # A reader in the middle of a batch gets nothing more; the events it did not get
            # stay in the backlog (and last_event_id is the last one it got).
            self._stash_events()
            self._events = None
            if not getattr(loop, "ag_running", False):
                await events.aclose()
        await self._release()

    #: ``close()`` as openai's ``AsyncStream`` names it; the same as ``aclose()``.
    close = aclose

    def _unblock_reader(self) -> None:
        if self._scope is not None:
            self._scope.cancel()
        shutdown(self._socket)

    async def _release(self) -> None:
        if self._owns_client and self._client is not None and self._loop is None:
            client, self._client = self._client, None
            await _pool.release_async(client)

    async def _cancellable(self, awaitable: Awaitable[_T]) -> _T:
        """Awaits ``awaitable`` so that ``aclose()`` or ``interrupt()`` from another task
        interrupts it."""
        machine = self._machine
        if machine.closed or machine.interrupted:
            if isinstance(awaitable, Coroutine):
                awaitable.close()  # Never awaited: close it so Python does not warn.
            raise _Woken
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                return await awaitable
            finally:
                self._scope = None
        # Only reached when aclose() or interrupt() cancelled the scope, which absorbed the
        # cancellation.
        raise _Woken

    def _read(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """The body's chunks, each read interruptible by ``aclose()`` from another task."""
        self._socket = response_socket(response)
        if self._socket is not None:
            # aclose() shuts the socket down, which ends a blocked read: a cancel scope per
            # read (or a generator layer per chunk) would cost more than parsing the chunk.
            return abody(response)
        return self._read_cancellable(abody(response))

    async def _read_cancellable(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``chunks``, each read in a cancel scope that ``aclose()`` cancels: for a transport
        whose socket fastsse cannot reach."""
        chunks = chunks.__aiter__()
        while True:
            try:
                yield await self._cancellable(chunks.__anext__())
            except StopAsyncIteration:
                return

    async def _connection_loop(self) -> AsyncGenerator[list[Event], None]:
        machine = self._machine
        if self._client is None:
            self._client = _pool.acquire_async(self._new_client_options())
        client = self._client
        try:
            while True:
                action = machine.next_action()
                if action is STOP:
                    return
                if isinstance(action, Wait):
                    with contextlib.suppress(_Woken):
                        await self._cancellable(anyio.sleep(action.seconds))
                    continue
                assert isinstance(action, Send)
                try:
                    request = self._build_request(client, action)
                    response = await self._cancellable(
                        client.send(request, stream=True, **self._send_options)
                    )
                except Exception as error:
                    _failed(machine, error)
                    continue
                try:
                    verdict = machine.response(response)
                    if verdict is Verdict.STREAM:
                        async for chunk in self._read(response):
                            if machine.closed:
                                # Bytes that were on their way when aclose() came (a blocked
                                # read it could not stop): nothing is handed out after it.
                                return
                            events = machine.feed(chunk)
                            if events:
                                self._batch = events
                                yield events
                            if machine.has_deferred_work:
                                machine.raise_deferred()
                        machine.ended()
                    elif verdict is Verdict.PREVIEW:
                        machine.refused(await self._cancellable(aread_preview(response)))
                except Exception as error:
                    _failed(machine, error)
                finally:
                    self._socket = None
                    machine.end_response()
                    with anyio.CancelScope(shield=True):
                        await response.aclose()
        except Exception:
            machine.done = True  # The stream's errors are final.
            raise
        finally:
            # Forgotten however it ends: also when a cancelled task or Ctrl-C ended its read
            # (which closed the connection), the next iteration starts a new loop, which
            # reconnects.
            self._loop = None
            if machine.closed or machine.done:
                await self._release()


class EventStream(_StreamBase[httpx.Client]):
    """A synchronous Server-Sent Events stream that reconnects and resumes.

    ``with EventStream(url) as stream: for event in stream: ...``

    Also ``next(stream)``, ``stream.batches()``, ``stream.json()``, ``stream.response``,
    ``stream.stats``, ``stream.last_event_id``, ``stream.interrupt()`` and ``close()``, which
    may be called from another thread: a blocked read returns at once. The constructor's
    parameters are documented on ``__init__``.
    """

    _client_classes = SYNC_CLIENTS

    _loop: Generator[list[Event], None, None] | None = None
    #: Interrupts the wait before a reconnect.
    _wake: threading.Event | None = None
    _reader: int | None = None
    _events: Generator[Event, None, None] | None = None

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __next__(self) -> Event:
        """The next event (``next(stream)``); raises StopIteration at the end."""
        if self._events is None or _finished(self._events):
            self._events = self.__iter__()
        return next(self._events)

    def __iter__(self) -> Generator[Event, None, None]:
        backlog = self._backlog
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

    def json(self, *, on_error: JSONErrorHandler | None = None) -> Generator[JSON, None, None]:
        """Each event's data decoded as JSON; see ``AsyncEventStream.json``."""
        decode = self._machine.decode_event
        events = self.__iter__()
        try:
            for event in events:
                value = decode(event, on_error)
                if value is not NOT_JSON:
                    yield value
        finally:
            events.close()

    def json_batches(
        self, *, on_error: JSONErrorHandler | None = None
    ) -> Generator[list[JSON], None, None]:
        """The events' data decoded as JSON, as lists, one per chunk received."""
        batches = self.batches()
        try:
            for batch in batches:
                decoded = self._machine.decode_json(batch, on_error)
                if decoded:
                    yield decoded
        finally:
            batches.close()

    def batches(self) -> Generator[list[Event], None, None]:
        """The events as lists, one per chunk received: the fastest way to consume; see
        ``AsyncEventStream.batches``."""
        if getattr(self._loop, "gi_running", False):
            raise self._busy("thread")
        loop = None
        try:
            while True:
                if self._backlog:
                    # Events a break left come first: before this iteration began, or while
                    # it was suspended (another iteration, event by event, broke mid-batch).
                    yield self._take_backlog()
                    continue
                if loop is None:
                    loop = self._loop_to_run(self._connection_loop)
                    if loop is None:
                        return
                # Not ``yield from``: that would close the loop whenever this iteration is
                # closed, and a ``break`` leaves the connection open for the next iteration.
                batch = next(loop, None)
                if batch is None:
                    return
                yield batch
        finally:
            if loop is not None and self._iteration_ended(loop, finished=_finished(loop)):
                loop.close()

    def close(self) -> None:
        """Close the stream and its connection now; safe from any thread, and idempotent."""
        self._machine.close()
        self._unblock_reader()
        loop = self._loop
        running = getattr(loop, "gi_running", False)
        # A loop that another thread runs, or holds suspended, is closed by that thread: its
        # read was woken by the shutdown above, and it sees ``closed`` at its next step.
        if loop is not None and self._reader == threading.get_ident() and not running:
            self._loop = None  # Closed here, not by an iteration.
            loop.close()
        self._release()

    def _unblock_reader(self) -> None:
        if self._wake is not None:
            self._wake.set()
        shutdown(self._socket)

    def _release(self) -> None:
        if self._owns_client and self._client is not None and self._loop is None:
            client, self._client = self._client, None
            _pool.release_sync(client)

    def _trace(self, name: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: keeps a new connection's socket as soon as it exists, so that
        ``close()`` from another thread can also wake a wait for the response headers. The
        caller's own ``extensions={"trace": ...}`` is called too."""
        if name in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            self._socket = socket_of(info.get("return_value"))
            if self._machine.closed or self._machine.interrupted:
                shutdown(self._socket)
        callers_trace = self._request_options.get("extensions", {}).get("trace")
        if callers_trace is not None:
            callers_trace(name, info)

    def _connection_loop(self) -> Generator[list[Event], None, None]:
        machine = self._machine
        self._reader = threading.get_ident()
        wake = self._wake = threading.Event()
        if self._client is None:
            self._client = _pool.acquire_sync(self._new_client_options())
        client = self._client
        try:
            while True:
                action = machine.next_action()
                if action is STOP:
                    return
                if isinstance(action, Wait):
                    wake.wait(action.seconds)
                    continue
                assert isinstance(action, Send)
                wake.clear()
                try:
                    request = self._build_request(client, action)
                    request.extensions["trace"] = self._trace
                    response = client.send(request, stream=True, **self._send_options)
                except Exception as error:
                    _failed(machine, error)
                    continue
                # A reused keep-alive connection made no connect event.
                self._socket = response_socket(response)
                try:
                    verdict = machine.response(response)
                    if verdict is Verdict.STREAM:
                        for chunk in body(response):
                            if machine.closed:
                                # Bytes that were on their way when close() came: nothing is
                                # handed out after it.
                                return
                            events = machine.feed(chunk)
                            if events:
                                yield events
                            if machine.has_deferred_work:
                                machine.raise_deferred()
                        machine.ended()
                    elif verdict is Verdict.PREVIEW:
                        machine.refused(read_preview(response))
                except Exception as error:
                    _failed(machine, error)
                finally:
                    self._socket = None
                    machine.end_response()
                    response.close()
        except Exception:
            machine.done = True  # The stream's errors are final.
            raise
        finally:
            self._loop = None  # Forgotten however it ends, as the async loop is.
            if machine.closed or machine.done:
                self._release()


class _EventBatches:
    """Where an async stream's event iterator (a BatchIterator) gets its batches: the backlog
    a ``break`` left, then the connection loop's, whose step it awaits itself (an async
    generator in between would cost a step of its own per chunk). Closing it ends that
    iterator only, not the connection."""

    __slots__ = ("_stream", "closed")

    def __init__(self, stream: AsyncEventStream) -> None:
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


def _finished(generator: object) -> bool:
    """Whether a generator or an async generator has run to its end (returned or raised)."""
    frame = getattr(generator, "gi_frame", None) or getattr(generator, "ag_frame", None)
    return frame is None


def _validate(client_classes: tuple[type, ...], **options: Any) -> None:
    """TypeError or ValueError for a constructor argument that cannot work."""
    url = options["url"]
    if not isinstance(url, (str, httpx.URL)):
        raise TypeError(f"url must be a str or an httpx.URL, got {url!r}")
    if not str(url).strip():
        raise ValueError("url must not be empty")
    try:
        httpx.URL(url)
    except httpx.InvalidURL as error:
        raise ValueError(f"url {url!r} is not a valid URL: {error}") from None
    client = options["client"]
    if client is not None and not accepts(client, client_classes):
        names = " or ".join(f"{c.__module__}.{c.__qualname__}" for c in client_classes)
        names += " (or httpx2's)"
        raise TypeError(f"client must be an {names} (or None), got {client!r}")
    method = options["method"]
    if not isinstance(method, str):
        raise TypeError(f"method must be a str such as 'GET' or 'POST', got {method!r}")
    if not method or not _TOKEN.fullmatch(method):
        raise ValueError(f"method must be an HTTP method such as 'GET' or 'POST', got {method!r}")
    if options["json"] is not None:
        try:
            httpx.Request("POST", "http://localhost/", json=options["json"])
        except (TypeError, ValueError) as error:
            raise type(error)(f"json cannot be sent as JSON: {error}") from None
    content = options["content"]
    if content is not None and not isinstance(content, (str, bytes)):
        raise TypeError(
            "content must be str or bytes (a stream may send its request again, so an "
            f"iterator cannot be its body), got {type(content).__name__}"
        )
    for name in ("data", "extensions"):
        value = options[name]
        if value is not None and not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a mapping or None, got {value!r}")
    files = options["files"]
    if files is not None and not isinstance(files, (Mapping, Sequence)):
        raise TypeError(f"files must be a mapping or a sequence of pairs, got {files!r}")
    for name, file in _items(files):
        if not isinstance(file, (bytes, str, tuple)) and not hasattr(file, "read"):
            raise TypeError(
                f"files[{name!r}] must be bytes, str, a file opened in binary mode or a "
                f"(filename, content[, content_type]) tuple, got {file!r}"
            )
    auth = options["auth"]
    if isinstance(auth, tuple) and len(auth) != 2:
        raise ValueError(f"auth must be a (user, password) pair, got a tuple of {len(auth)}")
    if not (auth is None or isinstance(auth, (tuple, *classes("Auth"))) or callable(auth)):
        raise TypeError(
            f"auth must be a (user, password) tuple, an httpx.Auth or None, got {auth!r}"
        )
    timeout = options["timeout"]
    if not isinstance(timeout, classes("Timeout")) and timeout is not None:
        _check_seconds("timeout", timeout, zero=True)
    for name in ("follow_redirects", "reconnect"):
        value = options[name]
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"{name} must be True, False or None, got {value!r}")
    last_event_id = options["last_event_id"]
    if not isinstance(last_event_id, str):
        raise TypeError(f"last_event_id must be a str, got {last_event_id!r}")
    retry = options["retry"]
    if retry is not None and not isinstance(retry, Retry):
        raise TypeError(f"retry must be a fastsse.Retry or None, got {retry!r}")
    for name in ("read_timeout", "connect_timeout"):
        if options[name] is not None:
            _check_seconds(name, options[name], zero=False)
    on_oversize = options["on_oversize"]
    if on_oversize not in ("error", "skip"):
        raise ValueError(f"on_oversize must be 'error' or 'skip', got {on_oversize!r}")
    for name in ("on_connect", "on_fault", "on_comment"):
        value = options[name]
        if value is not None and not callable(value):
            raise TypeError(f"{name} must be callable or None, got {value!r}")


def _items(pairs: Any) -> list[tuple[Any, Any]]:
    """A mapping's or a sequence of pairs' (name, value) items; [] for anything else."""
    if isinstance(pairs, Mapping):
        return list(pairs.items())
    if isinstance(pairs, Sequence) and not isinstance(pairs, (str, bytes)):
        return [pair for pair in pairs if isinstance(pair, tuple) and len(pair) == 2]
    return []


def _check_seconds(name: str, value: object, *, zero: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(
            f"{name} must be a finite number of seconds {bound} (or None), got {value!r}"
        )


#: An HTTP method is a token (RFC 9110).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _failed(machine: StreamMachine, error: Exception) -> None:
    """Tells ``machine`` how the attempt or the connection ended: a failure of the client
    library, or a wait cut short by close() or interrupt(). Re-raises anything else: the
    stream's own errors, and those of the caller's hooks, end the stream."""
    kind: FaultKind | None = "interrupted" if isinstance(error, _Woken) else classify(error)
    if kind is None:
        raise error
    machine.failed(kind, error)
