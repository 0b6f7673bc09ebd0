"""Event streams on httpx that reconnect, resume with Last-Event-ID and never hang.

``_Session`` holds everything the sync and async streams share and does no I/O: it builds
each request, judges each response, feeds the parser and decides whether and when to
reconnect. ``AsyncEventStream`` and ``EventStream`` only move bytes and wait.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from types import AsyncGeneratorType, GeneratorType
from typing import Any, Callable, Literal, TypeVar, Union

import anyio
import httpx

from fastsse import _json
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
        last_event_id = last_event_id or str(self.headers.pop("Last-Event-ID", ""))
        self.headers.setdefault("Accept", "text/event-stream")
        self.headers.setdefault("Cache-Control", "no-cache")
        self.params = params
        self.json = json
        self.content = content
        self.timeout = httpx.Timeout(connect_timeout, read=read_timeout)
        # Re-sending a POST can repeat its side effects (an LLM call is billed again), so only
        # GET reconnects unless the caller asks.
        self.reconnect = self.method == "GET" if reconnect is None else reconnect
        self.parser = Parser(
            last_event_id=last_event_id, max_event_size=max_event_size, on_oversize=on_oversize
        )
        self.backoff = (retry or Retry()).start()
        self.stats = StreamStats()
        self._server_retry: int | None = None
        self._events_on_connection = 0
        self._retry_after: float | None = None
        self._deferred: EventTooLargeError | None = None

    def build_request(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        headers = self.headers
        last_event_id = self.parser.last_event_id
        if last_event_id:
            # Bytes, so that an id outside Latin-1 reaches the server as the UTF-8 it was.
            headers = httpx.Headers([*headers.raw, (b"Last-Event-ID", last_event_id.encode())])
        return client.build_request(
            self.method,
            self.url,
            headers=headers,
            params=self.params,
            json=self.json,
            content=self.content,
            timeout=self.timeout,
        )

    def judge(self, response: httpx.Response) -> _Verdict:
        status = response.status_code
        if status == 204:
            return _Verdict.STOP
        if status == 200 and _media_type(response) == "text/event-stream":
            self.backoff.connected()
            self.stats.connections += 1
            self._events_on_connection = 0
            return _Verdict.STREAM
        if status in (408, 429) or status >= 500:
            if status in (429, 503):
                self._retry_after = parse_retry_after(response.headers.get("Retry-After", ""))
            return _Verdict.RETRY
        return _Verdict.FAIL

    def response_error(self, response: httpx.Response, body: bytes) -> SSEError:
        status = response.status_code
        what = f"{status} {response.reason_phrase}".strip()
        preview = f": {body!r}" if body else " (empty body)"
        if 200 <= status < 300:
            content_type = response.headers.get("Content-Type", "")
            return ContentTypeError(
                f"{self.method} {response.url} answered {what} with Content-Type "
                f"{content_type!r}, not 200 with text/event-stream{preview}",
                status_code=status,
                content_type=content_type,
                body=body,
            )
        return UnexpectedStatusError(
            f"{self.method} {response.url} answered {what}{preview}",
            status_code=status,
            body=body,
        )

    def failed(self, error: SSEError) -> SSEError:
        """Counts a response that ends the stream with ``error``, and returns it to raise."""
        self.stats.errors += 1
        return error

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
            self._events_on_connection += len(events)
        return events

    def raise_deferred(self) -> None:
        error, self._deferred = self._deferred, None
        if error is not None:
            raise error

    def connection_ended(self, cause: BaseException | None) -> float | None:
        """The connection ended (``cause`` is None for a clean end of stream). Returns the
        delay before reconnecting, None when the stream is over, or raises."""
        dropped_partial = self.parser.pending
        self.parser.finish()
        if dropped_partial:
            self.stats.dropped += 1
        if cause is not None:
            self.stats.errors += 1
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
        healthy, self._events_on_connection = self._events_on_connection, 0
        if healthy:
            # A connection that delivered events was healthy: start the backoff over.
            self.backoff.reset()
        retry_after, self._retry_after = self._retry_after, None
        delay = self.backoff.next_delay(cause, retry_after=retry_after)
        self.stats.reconnects += 1
        logger.info("reconnecting to %s in %.2f s after %r", self.url, delay, cause)
        return delay

    def decode_json(self, events: list[Event], on_error: JSONErrorHandler | None) -> list[Any]:
        decoded = []
        for event in events:
            try:
                decoded.append(_json.loads(event.data))
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
        return decoded


def _media_type(response: httpx.Response) -> str:
    content_type: str = response.headers.get("Content-Type", "")
    return content_type.partition(";")[0].strip().lower()


def _socket_of(network_stream: Any) -> socket.socket | None:
    sock = network_stream.get_extra_info("socket") if network_stream is not None else None
    return sock if isinstance(sock, socket.socket) else None


def _shutdown(sock: socket.socket | None) -> None:
    """Wakes a read blocked on ``sock`` in another thread (closing the fd would not)."""
    if sock is not None:
        with contextlib.suppress(OSError):  # Already closed: nothing to wake.
            sock.shutdown(socket.SHUT_RDWR)


class _StreamBase:
    """Construction and properties shared by the sync and async streams."""

    def __init__(
        self,
        url: httpx.URL | str,
        *,
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
        self._closed = False

    @property
    def last_event_id(self) -> str:
        """The id of the last dispatched event: where a reconnection resumes."""
        return self._session.parser.last_event_id

    @property
    def stats(self) -> StreamStats:
        return self._session.stats

    @property
    def closed(self) -> bool:
        return self._closed


class AsyncEventStream(_StreamBase):
    """An async Server-Sent Events stream that reconnects and resumes.

    ``async with AsyncEventStream(url) as stream: async for event in stream: ...``
    Pass ``client=`` to use your own ``httpx.AsyncClient`` (it is not closed for you).
    """

    def __init__(
        self,
        url: httpx.URL | str,
        *,
        client: httpx.AsyncClient | None = None,
        **options: Any,
    ) -> None:
        super().__init__(url, **options)
        self._client = client
        self._owns_client = client is None
        self._scope: anyio.CancelScope | None = None
        self._batches: AsyncIterator[list[Event]] | None = None

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        async for batch in self.batches():
            for event in batch:
                if self._closed:
                    return
                yield event

    async def json(self, *, on_error: JSONErrorHandler | None = None) -> AsyncIterator[Any]:
        """Each event's data decoded as JSON. An event that is not JSON is counted in
        ``stats.json_errors`` and passed to ``on_error`` (default: logged), and the stream
        goes on."""
        async for batch in self.json_batches(on_error=on_error):
            for value in batch:
                if self._closed:
                    return
                yield value

    async def json_batches(
        self, *, on_error: JSONErrorHandler | None = None
    ) -> AsyncIterator[list[Any]]:
        """The events' data decoded as JSON, as lists, one per chunk received; see ``json``."""
        async for batch in self.batches():
            decoded = self._session.decode_json(batch, on_error)
            if decoded:
                yield decoded

    def batches(self) -> AsyncIterator[list[Event]]:
        """The events as lists, one per chunk received: the fastest way to consume."""
        if self._batches is not None:
            raise RuntimeError("this stream is already being iterated")
        self._batches = batches = self._iterate()
        return batches

    async def aclose(self) -> None:
        """Close the stream and its connection now; safe from any task, and idempotent."""
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()
        batches = self._batches
        if isinstance(batches, AsyncGeneratorType) and not batches.ag_running:
            await batches.aclose()
        elif batches is None:
            await self._release()

    async def _release(self) -> None:
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _cancellable(self, awaitable: Awaitable[_T]) -> _T:
        """Awaits ``awaitable`` so that ``aclose()`` from another task interrupts it."""
        if self._closed:
            if hasattr(awaitable, "close"):
                awaitable.close()
            raise _Closed
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                return await awaitable
            finally:
                self._scope = None
        raise _Closed

    async def _iterate(self) -> AsyncIterator[list[Event]]:
        session = self._session
        if self._client is None:
            self._client = httpx.AsyncClient()
        client = self._client
        try:
            while True:
                cause: BaseException | None = None
                try:
                    response = await self._cancellable(
                        client.send(
                            session.build_request(client), stream=True, follow_redirects=True
                        )
                    )
                    try:
                        verdict = session.judge(response)
                        if verdict is _Verdict.STOP:
                            return
                        if verdict is _Verdict.STREAM:
                            chunks = response.aiter_bytes().__aiter__()
                            while True:
                                try:
                                    chunk = await self._cancellable(chunks.__anext__())
                                except StopAsyncIteration:
                                    break
                                events = session.feed(chunk)
                                if events:
                                    yield events
                                session.raise_deferred()
                        else:
                            body = await self._cancellable(_aread_prefix(response))
                            error = session.response_error(response, body)
                            if verdict is _Verdict.FAIL:
                                raise session.failed(error)
                            cause = error
                    finally:
                        with anyio.CancelScope(shield=True):
                            await response.aclose()
                except _Closed:
                    return
                except FastSSEError:
                    raise
                except httpx.TransportError as error:
                    cause = error
                if self._closed:
                    return
                delay = session.connection_ended(cause)
                if delay is None:
                    return
                await self._cancellable(anyio.sleep(delay))
        except _Closed:
            return
        finally:
            self._batches = None
            if self._closed:
                await self._release()


class EventStream(_StreamBase):
    """A synchronous Server-Sent Events stream that reconnects and resumes.

    ``with EventStream(url) as stream: for event in stream: ...``
    ``close()`` may be called from another thread: a blocked read returns at once.
    Pass ``client=`` to use your own ``httpx.Client`` (it is not closed for you).
    """

    def __init__(
        self,
        url: httpx.URL | str,
        *,
        client: httpx.Client | None = None,
        **options: Any,
    ) -> None:
        super().__init__(url, **options)
        self._client = client
        self._owns_client = client is None
        self._socket: socket.socket | None = None
        self._wake = threading.Event()
        self._batches: Iterator[list[Event]] | None = None
        self._reader: int | None = None

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Event]:
        for batch in self.batches():
            for event in batch:
                if self._closed:
                    return
                yield event

    def json(self, *, on_error: JSONErrorHandler | None = None) -> Iterator[Any]:
        """Each event's data decoded as JSON; see ``AsyncEventStream.json``."""
        for batch in self.json_batches(on_error=on_error):
            for value in batch:
                if self._closed:
                    return
                yield value

    def json_batches(self, *, on_error: JSONErrorHandler | None = None) -> Iterator[list[Any]]:
        """The events' data decoded as JSON, as lists, one per chunk received."""
        for batch in self.batches():
            decoded = self._session.decode_json(batch, on_error)
            if decoded:
                yield decoded

    def batches(self) -> Iterator[list[Event]]:
        """The events as lists, one per chunk received: the fastest way to consume."""
        if self._batches is not None:
            raise RuntimeError("this stream is already being iterated")
        self._batches = batches = self._iterate()
        return batches

    def close(self) -> None:
        """Close the stream and its connection now; safe from any thread, and idempotent."""
        self._closed = True
        self._wake.set()
        _shutdown(self._socket)
        batches = self._batches
        if batches is None:
            self._release()
        elif (
            self._reader == threading.get_ident()
            and isinstance(batches, GeneratorType)
            and not batches.gi_running
        ):
            batches.close()

    def _trace(self, name: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: keeps a new connection's socket as soon as it exists, so that
        ``close()`` from another thread can wake a wait for the response headers too."""
        if name == "connection.connect_tcp.complete":
            self._socket = _socket_of(info.get("return_value"))
            if self._closed:
                _shutdown(self._socket)

    def _release(self) -> None:
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            client.close()

    def _iterate(self) -> Iterator[list[Event]]:
        session = self._session
        self._reader = threading.get_ident()
        if self._client is None:
            self._client = httpx.Client()
        client = self._client
        try:
            while not self._closed:
                cause: BaseException | None = None
                try:
                    request = session.build_request(client)
                    request.extensions["trace"] = self._trace
                    response = client.send(request, stream=True, follow_redirects=True)
                    # A reused keep-alive connection made no connect event.
                    self._socket = _socket_of(response.extensions.get("network_stream"))
                    try:
                        if self._closed:  # close() came while connecting.
                            return
                        verdict = session.judge(response)
                        if verdict is _Verdict.STOP:
                            return
                        if verdict is _Verdict.STREAM:
                            for chunk in response.iter_bytes():
                                events = session.feed(chunk)
                                if events:
                                    yield events
                                session.raise_deferred()
                        else:
                            error = session.response_error(response, _read_prefix(response))
                            if verdict is _Verdict.FAIL:
                                raise session.failed(error)
                            cause = error
                    finally:
                        self._socket = None
                        response.close()
                except FastSSEError:
                    raise
                except httpx.TransportError as error:
                    cause = error
                if self._closed:
                    return
                delay = session.connection_ended(cause)
                if delay is None or self._wake.wait(delay):
                    return
        finally:
            self._batches = None
            if self._closed:
                self._release()


# An error response's body only decorates the error message: the first chunk is enough, and a
# body that stalls or breaks must not turn a 4xx into a reconnect.


async def _aread_prefix(response: httpx.Response) -> bytes:
    with contextlib.suppress(httpx.TransportError):
        async for chunk in response.aiter_bytes():
            return chunk[:_BODY_PREVIEW]
    return b""


def _read_prefix(response: httpx.Response) -> bytes:
    with contextlib.suppress(httpx.TransportError):
        for chunk in response.iter_bytes():
            return chunk[:_BODY_PREVIEW]
    return b""
