"""The httpx-sse API on fastsse's parser: change the import line, keep the code.

``connect_sse`` / ``aconnect_sse`` / ``EventSource`` behave as httpx-sse 0.4's do: the caller's
client and its timeouts, every keyword ``client.stream()`` takes passed through, no reconnection,
and ``SSEError`` when iteration starts on a response that is not ``text/event-stream``. Only the
parsing differs: fastsse's stream core (``fastsse.protocol.StreamMachine``, which does not
reconnect here) reads the bytes with the Rust parser, one call per chunk, and follows the WHATWG
algorithm where httpx-sse does not (see "Migrating from httpx-sse" in the README). As both
libraries do, a block that sets ``id:`` or ``retry:`` without data is an empty-data event
(the parser's ``dataless_blocks``): clients rely on it (the MCP SDK resumes from the id of a
server's priming block, ``id: evt-1`` and ``retry: 0`` with no data, and takes its reconnect
delay from ``sse.retry``), while lone ``event:`` blocks and comment-only heartbeats stay
undispatched (httpx-sse's empty events there are phantoms).

The client may be an ``httpx`` or an ``httpx2`` client (same API); errors raised for an httpx2
response are also instances of ``httpx2.SSEError``, so either library's ``except`` catches them.
``EventSource`` also behaves as ``httpx2.EventSource`` when iterated directly; ``fastsse.sse()``
(``_httpx2_compat``) is the twin of httpx2's ``client.sse()``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Mapping
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from typing import Any, Callable, Generic, Protocol, TypeVar, overload

import httpx

from fastsse._errors import EventTooLargeError, SSEError
from fastsse._fastsse import DEFAULT_MAX_EVENT_SIZE, BatchIterator, Event
from fastsse.protocol import StreamMachine

__all__ = ["EventSource", "SSEResponse", "aconnect_sse", "connect_sse"]


class SSEResponse(Protocol):
    """What EventSource needs of a response: ``httpx.Response`` and ``httpx2.Response`` fit."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]: ...

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]: ...


ResponseT = TypeVar("ResponseT", bound=SSEResponse)
ResponseT_co = TypeVar("ResponseT_co", bound=SSEResponse, covariant=True)


class _Client(Protocol[ResponseT_co]):
    @property
    def stream(self) -> Callable[..., AbstractContextManager[ResponseT_co]]: ...


class _AsyncClient(Protocol[ResponseT_co]):
    @property
    def stream(self) -> Callable[..., AbstractAsyncContextManager[ResponseT_co]]: ...


#: httpx2's bound on one event, in bytes, when an EventSource is iterated directly.
HTTPX2_MAX_EVENT_SIZE = 1024 * 1024


class _Default:
    """The default ``max_event_size``: it depends on the API used (see EventSource)."""

    def __repr__(self) -> str:
        return "<default>"


_DEFAULT = _Default()


def check_max_event_size(max_event_size: object) -> None:
    """Raises unless ``max_event_size`` is a number of bytes (>= 1) or None."""
    if max_event_size is None:
        return
    if not isinstance(max_event_size, int) or isinstance(max_event_size, bool):
        raise TypeError(f"max_event_size must be an int or None, got {max_event_size!r}")
    if max_event_size < 1:
        raise ValueError(f"max_event_size must be at least 1 byte, got {max_event_size}")


class EventSource(Generic[ResponseT]):
    """The events of one response, as httpx-sse's ``EventSource`` and as httpx2's; the
    response is not closed here (``connect_sse`` / ``sse`` close it, or its own context
    manager does). Two APIs, one parser (Rust):

    - httpx-sse's: ``iter_sse()`` / ``aiter_sse()``. A response that is not
      ``text/event-stream`` raises ``SSEError`` with httpx-sse's message; an event over
      ``max_event_size`` (default 16 MiB; httpx-sse has no bound) raises
      ``EventTooLargeError`` once the events before it have been yielded.
    - httpx2's: iterate the EventSource itself (``for`` / ``async for``), as
      ``httpx2.EventSource``. The content type is checked as httpx2 does, an event over
      ``max_event_size`` (default httpx2's 1 MiB) raises ``SSEError`` with httpx2's message.

    ``max_event_size=None`` sets no bound. ``SSEError`` is an ``httpx.TransportError``; for an
    httpx2 response it is also an ``httpx2.SSEError``, so either library's ``except`` catches
    it. Both APIs dispatch a block that sets ``id:`` or ``retry:`` without data as an
    empty-data event, with the block's type, id and retry, as both libraries do.
    """

    def __init__(
        self, response: ResponseT, max_event_size: int | _Default | None = _DEFAULT
    ) -> None:
        if not isinstance(max_event_size, _Default):
            check_max_event_size(max_event_size)
        self._response = response
        self._max_event_size = max_event_size

    def _size(self, default: int) -> int | None:
        size = self._max_event_size
        return default if isinstance(size, _Default) else size

    @property
    def response(self) -> ResponseT:
        return self._response

    # -- httpx-sse's API -------------------------------------------------------------------------

    def iter_sse(self) -> Iterator[Event]:
        """The response's events, parsed from its bytes as they arrive."""
        return self._events(httpx2=False)

    def aiter_sse(self) -> BatchIterator[Event]:
        """The response's events, parsed from its bytes as they arrive.

        An async iterator with ``aclose()`` (which closes the response's byte iterator), like
        httpx-sse's async generator; each event of a chunk is handed out without suspending
        (see ``BatchIterator``), which an async generator's per-event step would cost."""
        return BatchIterator(self._batches(httpx2=False))

    # -- httpx2's API: the EventSource iterated directly ---------------------------------------

    def __iter__(self) -> Iterator[Event]:
        """The response's events (httpx2's ``for sse in EventSource(response)``)."""
        return self._events(httpx2=True)

    def __aiter__(self) -> BatchIterator[Event]:
        """The response's events (httpx2's ``async for sse in EventSource(response)``), each
        event of a chunk handed out without suspending, as ``aiter_sse()``."""
        return BatchIterator(self._batches(httpx2=True))

    # -- both ----------------------------------------------------------------------------------

    def _machine(self, httpx2: bool) -> StreamMachine:
        """The stream core that reads the response's bytes, once the response is known to be an
        event stream: it does not reconnect (the caller's code does, as with httpx-sse), and
        dispatches blocks without data as both libraries do."""
        content_type = self._response.headers.get("content-type", "").partition(";")[0]
        if httpx2:
            # httpx2's test and message: the media type exactly, whatever its case.
            content_type = content_type.strip()
            if content_type.lower() != "text/event-stream":
                raise _sse_error(
                    "Expected response with content type 'text/event-stream', got "
                    f"{content_type!r}.",
                    self._response,
                )
            size = self._size(HTTPX2_MAX_EVENT_SIZE)
        else:
            # httpx-sse's test, case-insensitive as media types are (RFC 9110): it accepts
            # every value httpx-sse accepts, and "Text/Event-Stream" too.
            if "text/event-stream" not in content_type.lower():
                raise _sse_error(
                    "Expected response header Content-Type to contain 'text/event-stream', "
                    f"got {content_type!r}",
                    self._response,
                )
            size = self._size(DEFAULT_MAX_EVENT_SIZE)
        request = _request_of(self._response)
        return StreamMachine(
            "" if request is None else request.url,
            method="GET" if request is None else request.method,
            reconnect=False,
            max_event_size=sys.maxsize if size is None else size,
            dataless_blocks=True,
        )

    def _too_large(self, machine: StreamMachine, httpx2: bool) -> Exception:
        """The error of the oversized event the machine deferred (after the events its chunk
        completed, which the caller has yielded): httpx2's SSEError, or an EventTooLargeError
        that names this API's remedy."""
        try:
            machine.raise_deferred()
        except EventTooLargeError as error:
            if httpx2:
                sse_error = _sse_error(
                    f"Server-sent event exceeded the {error.max_event_size} byte limit.",
                    self._response,
                )
                sse_error.__cause__ = error
                return sse_error
            too_large = EventTooLargeError(
                f"an event exceeded max_event_size ({error.max_event_size} bytes); its bytes "
                "were discarded up to the blank line that ends it (pass a larger "
                "max_event_size= to EventSource, or None for no bound)",
                events=error.events,
                max_event_size=error.max_event_size,
                discarded=error.discarded,
            )
            too_large.response = error.response
            return too_large
        raise AssertionError("the machine deferred no error")  # pragma: no cover

    def _events(self, httpx2: bool) -> Iterator[Event]:
        machine = self._machine(httpx2)
        feed = machine.feed
        try:
            for chunk in self._response.iter_bytes():
                events = feed(chunk)
                if machine.has_deferred_work:  # An oversized event: the only deferred work.
                    yield from events
                    raise self._too_large(machine, httpx2)
                yield from events
        finally:
            machine.end_response()

    async def _batches(self, httpx2: bool) -> AsyncGenerator[list[Event], None]:
        """The events as lists, one per chunk of the response's bytes."""
        machine = self._machine(httpx2)
        feed = machine.feed
        chunks = self._response.aiter_bytes()
        try:
            async for chunk in chunks:
                events = feed(chunk)
                if machine.has_deferred_work:  # An oversized event: the only deferred work.
                    yield events
                    raise self._too_large(machine, httpx2)
                yield events
        finally:
            machine.end_response()
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()


def _sse_headers(headers: Any) -> list[tuple[Any, Any]]:
    """The caller's headers (any form httpx takes), with httpx-sse's Accept and Cache-Control
    in place of the caller's own. The caller's object is not modified (httpx-sse's dict is)."""
    kept = [(name, value) for name, value in _header_items(headers) if _lower(name) not in _OURS]
    return [*kept, ("Accept", "text/event-stream"), ("Cache-Control", "no-store")]


_OURS = ("accept", "cache-control")


def _header_items(headers: Any) -> list[tuple[Any, Any]]:
    """The (name, value) pairs of headers in any form httpx takes (None, a mapping, an
    ``httpx.Headers`` with its repeated names, pairs), as a new list."""
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        multi_items = getattr(headers, "multi_items", None)
        return list(multi_items() if multi_items is not None else headers.items())
    return list(headers)


def _lower(name: str | bytes) -> str:
    return (name.decode("latin-1") if isinstance(name, bytes) else name).lower()


@overload
def connect_sse(
    client: httpx.Client, method: str, url: httpx.URL | str, **kwargs: Any
) -> AbstractContextManager[EventSource[httpx.Response]]: ...
@overload
def connect_sse(
    client: _Client[ResponseT], method: str, url: Any, **kwargs: Any
) -> AbstractContextManager[EventSource[ResponseT]]: ...
def connect_sse(
    client: Any, method: str, url: Any, **kwargs: Any
) -> AbstractContextManager[EventSource[Any]]:
    """``client.stream(method, url, **kwargs)`` with ``Accept: text/event-stream`` and
    ``Cache-Control: no-store``, as an ``EventSource``; the response closes with the block."""
    return _connect(client, method, url, kwargs)


@contextmanager
def _connect(
    client: Any, method: str, url: Any, kwargs: dict[str, Any]
) -> Generator[EventSource[Any], None, None]:
    headers = _sse_headers(kwargs.pop("headers", None))
    with client.stream(method, url, headers=headers, **kwargs) as response:
        yield EventSource(response)


@overload
def aconnect_sse(
    client: httpx.AsyncClient, method: str, url: httpx.URL | str, **kwargs: Any
) -> AbstractAsyncContextManager[EventSource[httpx.Response]]: ...
@overload
def aconnect_sse(
    client: _AsyncClient[ResponseT], method: str, url: Any, **kwargs: Any
) -> AbstractAsyncContextManager[EventSource[ResponseT]]: ...
def aconnect_sse(
    client: Any, method: str, url: Any, **kwargs: Any
) -> AbstractAsyncContextManager[EventSource[Any]]:
    """The async ``connect_sse``."""
    return _aconnect(client, method, url, kwargs)


@asynccontextmanager
async def _aconnect(
    client: Any, method: str, url: Any, kwargs: dict[str, Any]
) -> AsyncGenerator[EventSource[Any], None]:
    headers = _sse_headers(kwargs.pop("headers", None))
    async with client.stream(method, url, headers=headers, **kwargs) as response:
        yield EventSource(response)


def _request_of(response: Any) -> Any:
    """The response's request, or None for a response built by hand."""
    try:
        return response.request
    except (AttributeError, RuntimeError):
        return None


def _sse_error(message: str, response: Any) -> SSEError:
    """An SSEError about ``response``, which is also its own library's SSEError when that is
    not httpx (httpx2), so that code catching that library's errors catches it."""
    cls = SSEError if isinstance(response, httpx.Response) else _foreign_sse_error(response)
    return cls(message, request=_request_of(response))


_FOREIGN_SSE_ERRORS: dict[str, type[SSEError]] = {}


def _foreign_sse_error(response: Any) -> type[SSEError]:
    """SSEError mixed with the SSEError (or TransportError) of the response's library."""
    name = type(response).__module__.partition(".")[0]
    cls = _FOREIGN_SSE_ERRORS.get(name)
    if cls is None:
        library = sys.modules.get(name)
        base = getattr(library, "SSEError", None) or getattr(library, "TransportError", None)
        cls = SSEError
        if isinstance(base, type) and issubclass(base, Exception):
            cls = type("SSEError", (SSEError, base), {"__module__": SSEError.__module__})
        _FOREIGN_SSE_ERRORS[name] = cls
    return cls
