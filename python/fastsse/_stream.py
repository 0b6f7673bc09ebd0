"""Event streams on httpx that reconnect, resume with Last-Event-ID and never hang.

``_Session`` holds everything the sync and async streams share and does no I/O: it builds
each request, judges each response, feeds the parser and decides whether and when to
reconnect. ``AsyncEventStream`` and ``EventStream`` only move bytes and wait.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Callable, Generic, Literal, TypeVar, Union

import anyio
import httpx

from fastsse import _clients, _json, _transport
from fastsse._errors import (
    ContentTypeError,
    EventTooLargeError,
    FastSSEError,
    SSEError,
    StreamInterruptedError,
    UnexpectedStatusError,
)
from fastsse._fastsse import DEFAULT_MAX_EVENT_SIZE, Event, Parser
from fastsse._policy import Retry, parse_retry_after

__all__ = ["DEFAULT_READ_TIMEOUT", "AsyncEventStream", "EventStream", "StreamStats"]

#: No bytes for this long means the connection is dead. Generous, so that a feed that is
#: quiet for minutes (with sparse heartbeats) survives; httpx's own 5 s would kill it.
DEFAULT_READ_TIMEOUT = 300.0
DEFAULT_CONNECT_TIMEOUT = 30.0
#: How much of an error response's body an error message quotes.
_BODY_PREVIEW = 512

_T = TypeVar("_T")
_Client = TypeVar("_Client", httpx.Client, httpx.AsyncClient)
_Loop = TypeVar("_Loop")
#: What h11 accepts in a header value: no control characters but tab.
_LEGAL_HEADER_VALUE = re.compile(rb"[^\x00-\x08\x0a-\x1f\x7f]*")
#: An error response's body only decorates the error: wait this long at most for it.
_BODY_PREVIEW_TIMEOUT = 1.0
JSONErrorHandler = Callable[[Event, ValueError], None]
Content = Union[str, bytes, None]

logger = logging.getLogger("fastsse")


@dataclass
class StreamStats:
    """Counters of one stream, across its reconnections."""

    events: int = 0
    bytes: int = 0
    connections: int = 0
    reconnects: int = 0
    #: Failed connections, and responses that led to a reconnect or ended the stream.
    errors: int = 0
    #: Unterminated events discarded because their connection ended (never delivered).
    dropped: int = 0
    #: Events discarded for exceeding ``max_event_size``.
    oversized: int = 0
    #: Events whose data was not valid JSON, when decoding JSON.
    json_errors: int = 0


class _Verdict(enum.Enum):
    STREAM = enum.auto()
    STOP = enum.auto()
    RETRY = enum.auto()
    FAIL = enum.auto()


#: What decode_event returns for data that is not JSON (None is valid JSON).
NOT_JSON: Any = object()


class _Closed(Exception):
    """The stream was closed while waiting."""


class _Session:
    """The I/O-free part of a stream: requests, verdicts, parsing, reconnect decisions."""

    def __init__(
        self,
        url: httpx.URL | str,
        *,
        method: str,
        headers: httpx._types.HeaderTypes | None,
        params: httpx._types.QueryParamTypes | None,
        json: Any,
        content: Content,
        last_event_id: str,
        retry: Retry | None,
        read_timeout: float | None,
        connect_timeout: float,
        max_event_size: int,
        on_oversize: Literal["error", "skip"],
        reconnect: bool | None,
    ) -> None:
        self.method = method.upper()
        self.url = url
        self.headers = httpx.Headers(headers)
        # A Last-Event-ID header given by the caller is where the stream starts; from then on
        # the stream owns the header.
        given_header = self.headers.pop("Last-Event-ID", None)
        last_event_id = last_event_id or given_header or ""
        self.headers.setdefault("Accept", "text/event-stream")
        self.headers.setdefault("Cache-Control", "no-cache")
        self.params = params
        self.json = json
        self.content = content
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        # Re-sending a POST can repeat its side effects (an LLM call is billed again), so only
        # GET reconnects unless the caller asks.
        self.reconnect = self.method == "GET" if reconnect is None else reconnect
        self.parser = Parser(
            last_event_id=last_event_id, max_event_size=max_event_size, on_oversize=on_oversize
        )
        self.backoff = (retry or Retry()).start()
        self.stats = StreamStats()
        self._server_retry: int | None = None
        #: Requests sent so far.
        self.requests = 0
        self._cut_mid_event = False
        self._retry_after: float | None = None
        self._deferred: EventTooLargeError | None = None

    def build_request(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The next request, built by ``client`` (of httpx or httpx2) with its own classes."""
        self.requests += 1
        headers = self.headers
        # Bytes, so that an id outside Latin-1 reaches the server as the UTF-8 it was. HTTP
        # drops surrounding blanks from a header value, as browsers do before sending it.
        last_event_id = self.parser.last_event_id.encode().strip(b" \t")
        if last_event_id:
            if _LEGAL_HEADER_VALUE.fullmatch(last_event_id):
                headers = httpx.Headers([*headers.raw, (b"Last-Event-ID", last_event_id)])
            else:
                logger.warning(
                    "the event id %r has control characters, so it cannot be sent back in a "
                    "Last-Event-ID header; reconnecting to %s without it",
                    last_event_id,
                    self.url,
                )
        return client.build_request(
            self.method,
            self.url,
            headers=headers.raw,
            params=self.params,
            json=self.json,
            content=self.content,
            timeout=_clients.timeout(client, connect=self.connect_timeout, read=self.read_timeout),
        )

    def judge(self, response: httpx.Response) -> _Verdict:
        status = response.status_code
        if status == 204:
            return _Verdict.STOP
        if status == 200 and _media_type(response) == "text/event-stream":
            self.backoff.connected()
            self.stats.connections += 1
            return _Verdict.STREAM
        if status in (408, 429) or status >= 500:
            if status in (429, 503):
                self._retry_after = parse_retry_after(response.headers.get("Retry-After", ""))
            return _Verdict.RETRY
        return _Verdict.FAIL

    def refusal(self, response: httpx.Response, verdict: _Verdict, body: bytes) -> SSEError:
        """A response that is not a stream: raises its error when it ends the stream, else
        returns it as the cause of the reconnect."""
        error = self.response_error(response, body)
        if verdict is _Verdict.FAIL:
            self.stats.errors += 1
            raise error
        return error

    def response_error(self, response: httpx.Response, body: bytes) -> SSEError:
        status = response.status_code
        what = f"{status} {response.reason_phrase}".strip()
        preview = f": {body!r}" if body else " (empty body)"
        if 200 <= status < 300:
            content_type = response.headers.get("Content-Type", "")
            return ContentTypeError(
                f"{self.method} {response.url} answered {what} with Content-Type "
                f"{content_type!r}, not 200 with text/event-stream{preview}",
                response=response,
                content_type=content_type,
                body=body,
            )
        return UnexpectedStatusError(
            f"{self.method} {response.url} answered {what}{preview}",
            response=response,
            body=body,
        )

    def feed(self, chunk: bytes) -> list[Event]:
        stats = self.stats
        stats.bytes += len(chunk)
        try:
            events = self.parser.feed(chunk)
        except EventTooLargeError as error:
            # Deliver what the chunk completed first; the error follows them.
            events = error.events
            self._deferred = error
        stats.oversized = self.parser.oversized
        retry = self.parser.retry
        if retry is not None and retry != self._server_retry:
            self._server_retry = retry
            self.backoff.server_retry(retry)
        if events:
            stats.events += len(events)
        return events

    def raise_deferred(self) -> None:
        error, self._deferred = self._deferred, None
        if error is not None:
            raise error

    def end_response(self) -> None:
        """The response is over, whichever way (its end, a break, a close): an event it left
        unfinished is dropped, never delivered, nor joined to the next connection's bytes."""
        if self.parser.pending:
            self.stats.dropped += 1
            self._cut_mid_event = True
        self.parser.finish()
        self._deferred = None

    def may_send_again(self) -> bool:
        """Whether the request may be sent (again). A stream that does not reconnect (a POST,
        by default) is sent once: asking again could repeat its side effects."""
        if self.requests and not self.reconnect:
            raise StreamInterruptedError(
                f"the {self.method} stream from {self.url} was closed before its end, and it "
                "does not reconnect (pass reconnect=True to resume it with Last-Event-ID)"
            )
        return True

    def connection_ended(self, cause: BaseException | None) -> float | None:
        """The connection ended (``cause`` is None for a clean end of stream). Returns the
        delay before reconnecting, None when the stream is over, or raises."""
        dropped_partial, self._cut_mid_event = self._cut_mid_event, False
        if cause is not None:
            self.stats.errors += 1
        if cause is not None and _clients.classify(cause) == "invalid_request":
            raise cause  # Our own request is at fault: asking again cannot help.
        if not self.reconnect:
            if cause is None and not dropped_partial:
                return None
            if isinstance(cause, FastSSEError):
                raise cause
            ending = "ended in the middle of an event" if cause is None else f"broke ({cause!r})"
            raise StreamInterruptedError(
                f"the {self.method} stream from {self.url} {ending}; it does not reconnect "
                "(pass reconnect=True to resume it with Last-Event-ID)"
            ) from cause
        retry_after, self._retry_after = self._retry_after, None
        delay = self.backoff.next_delay(cause, retry_after=retry_after)
        self.stats.reconnects += 1
        logger.info("reconnecting to %s in %.2f s after %r", self.url, delay, cause)
        return delay

    def decode_json(self, events: list[Event], on_error: JSONErrorHandler | None) -> list[Any]:
        decoded = [self.decode_event(event, on_error) for event in events]
        return [value for value in decoded if value is not NOT_JSON]

    def decode_event(self, event: Event, on_error: JSONErrorHandler | None) -> Any:
        """The event's data decoded, or ``NOT_JSON`` (after counting and reporting it)."""
        try:
            return _json.loads(event.data)
        except ValueError as error:
            self.stats.json_errors += 1
            if on_error is None:
                logger.warning(
                    "skipped an event whose data is not JSON (id=%r, event=%r): %s; data=%r",
                    event.id,
                    event.event,
                    error,
                    event.data[:200],
                )
            else:
                on_error(event, error)
            return NOT_JSON


def _media_type(response: httpx.Response) -> str:
    content_type: str = response.headers.get("Content-Type", "")
    return content_type.partition(";")[0].strip().lower()


class _StreamBase(Generic[_Client]):
    """Construction, state and properties shared by the sync and async streams."""

    #: The socket of the connection in use, shut down by close() to wake a blocked read.
    _socket: _clients.Socket | None = None
    #: Whether the stream drives an AsyncClient (else a Client).
    _asynchronous = False
    #: The connection loop (a generator): requests, responses, parsing, reconnects.
    _loop: Any = None

    def __init__(
        self,
        url: httpx.URL | str,
        *,
        client: _Client | None = None,
        method: str = "GET",
        headers: httpx._types.HeaderTypes | None = None,
        params: httpx._types.QueryParamTypes | None = None,
        json: Any = None,
        content: Content = None,
        last_event_id: str = "",
        retry: Retry | None = None,
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        on_oversize: Literal["error", "skip"] = "error",
        reconnect: bool | None = None,
    ) -> None:
        self._session = _Session(
            url,
            method=method,
            headers=headers,
            params=params,
            json=json,
            content=content,
            last_event_id=last_event_id,
            retry=retry,
            read_timeout=read_timeout,
            connect_timeout=connect_timeout,
            max_event_size=max_event_size,
            on_oversize=on_oversize,
            reconnect=reconnect,
        )
        if client is not None:
            _clients.check_client(client, asynchronous=self._asynchronous)
        self._client: _Client | None = client
        self._owns_client = client is None
        self._closed = False
        # Events of a received batch not yet handed out one by one: iterating again (after a
        # ``break``) starts with them, so that none is skipped.
        self._backlog: deque[Event] = deque()
        self._delivered_id = last_event_id
        # The token of the iteration that owns the connection loop: only it may close the loop.
        self._owner: object | None = None
        # The stream ended for good (a 204, the end of a stream that does not reconnect, an
        # error): iterating it again gives nothing more.
        self._done = False

    @property
    def last_event_id(self) -> str:
        """The id to resume from: that of the last event handed out, as the spec keeps it."""
        return self._delivered_id if self._backlog else self._session.parser.last_event_id

    @property
    def stats(self) -> StreamStats:
        return self._session.stats

    @property
    def closed(self) -> bool:
        return self._closed

    def _loop_to_run(self, start: Callable[[], _Loop]) -> _Loop | None:
        """The connection loop to iterate: the one in progress, else a new one from ``start``,
        else None when the stream is over."""
        if self._loop is None:
            if self._done or self._closed or not self._session.may_send_again():
                return None
            self._loop = start()
        loop: _Loop = self._loop
        return loop

    def _gives_up_loop(self, owner: object, loop: object) -> bool:
        """An iteration ends: whether it must close ``loop``. A ``break`` ends the connection
        (iterating again reconnects and resumes), unless a later iteration owns the loop."""
        if self._owner is not owner:
            return False
        self._owner = None
        if self._loop is loop:
            self._loop = None
        return True

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
    Pass ``client=`` to use your own ``httpx.AsyncClient`` (it is not closed for you; the
    stream sets its own timeouts on its requests: ``connect_timeout`` and ``read_timeout``).
    """

    _scope: anyio.CancelScope | None = None
    _loop: AsyncGenerator[list[Event], None] | None = None
    _asynchronous = True

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __aiter__(self) -> AsyncGenerator[Event, None]:
        backlog = self._backlog
        # ``async for`` does not close what it iterates: closing this iterator must close the
        # connection now, not whenever the garbage collector gets to it.
        batches = self.batches()
        try:
            async for batch in batches:
                backlog.extend(batch)
                while backlog and not self._closed:
                    yield self._next_from_backlog()
        finally:
            await batches.aclose()

    async def json(self, *, on_error: JSONErrorHandler | None = None) -> AsyncGenerator[Any, None]:
        """Each event's data decoded as JSON. An event that is not JSON is counted in
        ``stats.json_errors`` and passed to ``on_error`` (default: logged), and the stream
        goes on."""
        decode = self._session.decode_event
        events = self.__aiter__()
        try:
            async for event in events:
                value = decode(event, on_error)
                if value is not NOT_JSON:
                    yield value
        finally:
            await events.aclose()

    async def json_batches(
        self, *, on_error: JSONErrorHandler | None = None
    ) -> AsyncGenerator[list[Any], None]:
        """The events' data decoded as JSON, as lists, one per chunk received; see ``json``."""
        batches = self.batches()
        try:
            async for batch in batches:
                decoded = self._session.decode_json(batch, on_error)
                if decoded:
                    yield decoded
        finally:
            await batches.aclose()

    async def batches(self) -> AsyncGenerator[list[Event], None]:
        """The events as lists, one per chunk received: the fastest way to consume.

        Every iteration of a stream continues where the last one stopped; a ``break`` closes
        the connection, and the next iteration resumes it with Last-Event-ID."""
        if getattr(self._loop, "ag_running", False):
            raise RuntimeError("this stream is already being iterated, by another task")
        # Claimed first: an earlier iteration finalised late must not close the loop now.
        owner = self._owner = object()
        if self._backlog:
            yield self._take_backlog()
        loop = self._loop_to_run(self._connection_loop)
        if loop is None:
            return
        try:
            async for batch in loop:
                yield batch
        finally:
            if self._gives_up_loop(owner, loop):
                await loop.aclose()

    async def aclose(self) -> None:
        """Close the stream and its connection now; safe from any task, and idempotent."""
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()
        _clients.shutdown(self._socket)
        loop = self._loop
        # A loop running in another task stops at the cancelled scope instead.
        if loop is not None and not getattr(loop, "ag_running", False):
            self._owner = self._loop = None  # Closed here, not by the iteration that ran it.
            await loop.aclose()
        await self._release()

    async def _release(self) -> None:
        if self._owns_client and self._client is not None and self._loop is None:
            client, self._client = self._client, None
            await client.aclose()

    async def _cancellable(self, awaitable: Awaitable[_T]) -> _T:
        """Awaits ``awaitable`` so that ``aclose()`` from another task interrupts it."""
        if self._closed:
            if isinstance(awaitable, Coroutine):
                awaitable.close()  # Never awaited: close it so Python does not warn.
            raise _Closed
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                return await awaitable
            finally:
                self._scope = None
        # Only reached when aclose() cancelled the scope, which absorbed the cancellation.
        raise _Closed

    async def _read(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """The body's chunks, each read interruptible by ``aclose()`` from another task."""
        self._socket = _clients.socket_of(response)
        if self._socket is not None:
            # aclose() shuts the socket down, which ends a blocked read: a cancel scope per
            # read would cost more than parsing the chunk.
            async for chunk in response.aiter_bytes():
                yield chunk
            return
        chunks = response.aiter_bytes().__aiter__()
        while True:
            try:
                yield await self._cancellable(chunks.__anext__())
            except StopAsyncIteration:
                return

    async def _connection_loop(self) -> AsyncGenerator[list[Event], None]:
        session = self._session
        if self._client is None:
            self._client = _transport.async_client()
        client = self._client
        try:
            while True:
                cause: BaseException | None = None
                try:
                    request = session.build_request(client)
                    response = await self._cancellable(
                        client.send(request, stream=True, follow_redirects=True)
                    )
                    try:
                        verdict = session.judge(response)
                        if verdict is _Verdict.STOP:
                            self._done = True
                            return
                        if verdict is not _Verdict.STREAM:
                            body = await self._cancellable(_aread_preview(response))
                            cause = session.refusal(response, verdict, body)
                        else:
                            async for chunk in self._read(response):
                                events = session.feed(chunk)
                                if events:
                                    yield events
                                session.raise_deferred()
                    finally:
                        self._socket = None
                        session.end_response()
                        with anyio.CancelScope(shield=True):
                            await response.aclose()
                except FastSSEError:
                    raise
                except Exception as error:
                    if _clients.classify(error) is None:
                        raise
                    cause = error
                if self._closed:
                    return
                delay = session.connection_ended(cause)
                if delay is None:
                    self._done = True
                    return
                await self._cancellable(anyio.sleep(delay))
        except _Closed:
            return
        except Exception:
            self._done = True  # The stream's errors are final.
            raise
        finally:
            if self._closed or self._done:
                self._loop = None
                await self._release()


class EventStream(_StreamBase[httpx.Client]):
    """A synchronous Server-Sent Events stream that reconnects and resumes.

    ``with EventStream(url) as stream: for event in stream: ...``
    ``close()`` may be called from another thread: a blocked read returns at once.
    Pass ``client=`` to use your own ``httpx.Client`` (it is not closed for you; the stream
    sets its own timeouts on its requests: ``connect_timeout`` and ``read_timeout``).
    """

    _loop: Generator[list[Event], None, None] | None = None
    #: Interrupts the wait before a reconnect.
    _wake: threading.Event | None = None
    _reader: int | None = None

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Generator[Event, None, None]:
        backlog = self._backlog
        with contextlib.closing(self.batches()) as batches:
            for batch in batches:
                backlog.extend(batch)
                while backlog and not self._closed:
                    yield self._next_from_backlog()

    def json(self, *, on_error: JSONErrorHandler | None = None) -> Generator[Any, None, None]:
        """Each event's data decoded as JSON; see ``AsyncEventStream.json``."""
        decode = self._session.decode_event
        with contextlib.closing(self.__iter__()) as events:
            for event in events:
                value = decode(event, on_error)
                if value is not NOT_JSON:
                    yield value

    def json_batches(
        self, *, on_error: JSONErrorHandler | None = None
    ) -> Generator[list[Any], None, None]:
        """The events' data decoded as JSON, as lists, one per chunk received."""
        with contextlib.closing(self.batches()) as batches:
            for batch in batches:
                decoded = self._session.decode_json(batch, on_error)
                if decoded:
                    yield decoded

    def batches(self) -> Generator[list[Event], None, None]:
        """The events as lists, one per chunk received: the fastest way to consume; see
        ``AsyncEventStream.batches``."""
        if getattr(self._loop, "gi_running", False):
            raise RuntimeError("this stream is already being iterated, by another thread")
        owner = self._owner = object()
        if self._backlog:
            yield self._take_backlog()
        loop = self._loop_to_run(self._connection_loop)
        if loop is None:
            return
        try:
            # Not ``yield from``: that would close the loop whenever this iteration is closed.
            for batch in loop:  # noqa: UP028
                yield batch
        finally:
            if self._gives_up_loop(owner, loop):
                loop.close()

    def close(self) -> None:
        """Close the stream and its connection now; safe from any thread, and idempotent."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        _clients.shutdown(self._socket)
        loop = self._loop
        running = getattr(loop, "gi_running", False)
        # A loop that another thread runs, or holds suspended, is closed by that thread: its
        # read was woken by the shutdown above, and it sees ``closed`` at its next step.
        if loop is not None and self._reader == threading.get_ident() and not running:
            self._owner = self._loop = None  # Closed here, not by the iteration that ran it.
            loop.close()
        self._release()

    def _release(self) -> None:
        if self._owns_client and self._client is not None and self._loop is None:
            client, self._client = self._client, None
            client.close()

    def _trace(self, name: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: keeps a new connection's socket as soon as it exists, so that
        ``close()`` from another thread can also wake a wait for the response headers."""
        if name in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            self._socket = _clients.network_socket(info.get("return_value"))
            if self._closed:
                _clients.shutdown(self._socket)

    def _connection_loop(self) -> Generator[list[Event], None, None]:
        session = self._session
        self._reader = threading.get_ident()
        self._wake = threading.Event()
        if self._client is None:
            self._client = _transport.sync_client()
        client = self._client
        try:
            while not self._closed:
                cause: BaseException | None = None
                try:
                    request = session.build_request(client)
                    request.extensions["trace"] = self._trace
                    response = client.send(request, stream=True, follow_redirects=True)
                    # A reused keep-alive connection made no connect event.
                    self._socket = _clients.socket_of(response)
                    try:
                        if self._closed:  # close() came while connecting.
                            return
                        verdict = session.judge(response)
                        if verdict is _Verdict.STOP:
                            self._done = True
                            return
                        if verdict is not _Verdict.STREAM:
                            cause = session.refusal(response, verdict, _read_preview(response))
                        else:
                            for chunk in response.iter_bytes():
                                events = session.feed(chunk)
                                if events:
                                    yield events
                                session.raise_deferred()
                    finally:
                        self._socket = None
                        session.end_response()
                        response.close()
                except FastSSEError:
                    raise
                except Exception as error:
                    if _clients.classify(error) is None:
                        raise
                    cause = error
                if self._closed:
                    return
                delay = session.connection_ended(cause)
                if delay is None:
                    self._done = True
                    return
                if self._wake.wait(delay):
                    return
        except Exception:
            self._done = True  # The stream's errors are final.
            raise
        finally:
            if self._closed or self._done:
                self._loop = None
                self._release()


def _preview_timeout(response: httpx.Response) -> None:
    """Shortens the read timeout for the rest of ``response``'s body: httpcore reads it from
    the request's extensions at each read."""
    timeout = dict(response.request.extensions.get("timeout", {}))
    read = timeout.get("read")
    timeout["read"] = _BODY_PREVIEW_TIMEOUT if read is None else min(read, _BODY_PREVIEW_TIMEOUT)
    response.request.extensions["timeout"] = timeout


# An error response's body only decorates the error message: its first chunk is enough, and a
# body that stalls or breaks must neither delay the error nor turn a 4xx into a reconnect.


async def _aread_preview(response: httpx.Response) -> bytes:
    _preview_timeout(response)
    # A transport that took its timeouts once, at the request (httpx-aiohttp's), is bounded here.
    with anyio.move_on_after(_BODY_PREVIEW_TIMEOUT):
        try:
            async for chunk in response.aiter_bytes():
                return chunk[:_BODY_PREVIEW]
        except Exception as error:
            if _clients.classify(error) is None:
                raise
    return b""


def _read_preview(response: httpx.Response) -> bytes:
    _preview_timeout(response)
    try:
        for chunk in response.iter_bytes():
            return chunk[:_BODY_PREVIEW]
    except Exception as error:
        if _clients.classify(error) is None:
            raise
    return b""
