"""The httpx-sse API on fastsse's parser: change the import line, keep the code.

``connect_sse`` / ``aconnect_sse`` / ``EventSource`` behave as httpx-sse 0.4's do: the caller's
client and its timeouts, every keyword ``client.stream()`` takes passed through, no reconnection,
and ``SSEError`` when iteration starts on a response that is not ``text/event-stream``. Only the
parsing differs: the Rust parser reads the bytes, one call per chunk, and follows the WHATWG
algorithm where httpx-sse does not (see "Migrating from httpx-sse" in the README).

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
from fastsse._fastsse import DEFAULT_MAX_EVENT_SIZE, BatchIterator, Event, Parser

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


class _BlockParser:
    """A ``Parser`` whose ``feed()`` also reports, as an empty-data event, a block that sets
    ``id:`` or ``retry:`` without data, as httpx-sse and httpx2 do (the spec dispatches nothing
    for it; fastsse's own streams follow the spec). Clients rely on it: the MCP SDK resumes
    from the id of a server's priming block (``id: evt-1``, ``retry: 0``, no data) and takes
    its reconnect delay from ``sse.retry``. Lone ``event:`` blocks and comment-only
    heartbeats stay undispatched (httpx-sse's empty events there are phantoms).

    The Rust parser dispatches no such block, so it is seen in what the parser reports: its
    ``last_event_id`` (set when a block ends) and ``retry`` (set by the line) compared before
    and after each chunk, against the events the chunk completed; a chunk costs a few
    attribute reads more, an event nothing. What follows from reading state, not lines:

    - a block that changes the id is reported after the events of its chunk, with that id,
      when no event of the same chunk follows it (exact when a server flushes each block on its
      own); followed in its chunk by an event, it is not told apart from that event's own id;
    - a block that sets ``retry:`` to a new value is reported once it has ended, before the
      events of the chunk it ended in, with the id before that chunk (never an id the stream
      had not reached yet), unless it is the chunk's last block and sets an id too (then it is
      the event above, carrying both);
    - a block that repeats the current id or retry value is not seen, nor the event type or
      the comments of a reported block (it is a ``message``).
    """

    __slots__ = ("_id", "_retry", "_unclaimed", "parser")

    def __init__(self, max_event_size: int | None) -> None:
        size = sys.maxsize if max_event_size is None else max_event_size
        self.parser = Parser(max_event_size=size)
        # The parser's last_event_id and retry after the last chunk (kept here: reading them
        # from the parser makes new objects).
        self._id = ""
        self._retry: int | None = None
        # parser.retry was set by a line of a block still open at the last chunk's end, and
        # no event carried it yet.
        self._unclaimed = False

    def feed(self, chunk: bytes) -> list[Event]:
        parser = self.parser
        events = parser.feed(chunk)
        last_id = parser.last_event_id
        if (
            parser.retry == self._retry
            and not self._unclaimed
            and last_id == (events[-1].id if events else self._id)
        ):
            self._id = last_id
            return events
        return self._dataless(chunk, events)

    def _dataless(self, chunk: bytes, events: list[Event]) -> list[Event]:
        parser = self.parser
        id_before, self._id = self._id, parser.last_event_id
        retry_before, self._retry = self._retry, parser.retry
        retry = parser.retry
        unclaimed = self._unclaimed
        if retry != retry_before:
            # Set in this chunk: claimed by the last event that carries a retry, if any.
            carried = [event.retry for event in events if event.retry is not None]
            unclaimed = not carried or carried[-1] != retry
            # Its block may still be open, and may yet get data: it is when the line comes
            # after the chunk's last blank line (LF LF, CR CR or LF CR is in every blank line;
            # a rare path: retry values seldom change).
            ended = not parser.pending or (bool(events) and b"retry" not in _last_block(chunk))
        else:
            # Set by the block open at the last chunk's end: its event, if it had data, is the
            # first of this chunk and carries it.
            if events and events[0].retry is not None:
                unclaimed = False
            ended = bool(events) or not parser.pending
        last_id = self._id
        if last_id != (events[-1].id if events else id_before):
            # A block without data ended after the chunk's last event: the retry goes with it
            # (it is the likelier block; were it the open one's, that block's event would
            # carry it as well).
            events.append(Event(None, "", last_id, retry if unclaimed else None))
            unclaimed = False
        elif unclaimed and ended:
            events.insert(0, Event(None, "", id_before, retry))
            unclaimed = False
        self._unclaimed = unclaimed
        return events


def _last_block(chunk: bytes) -> bytes:
    """What follows the chunk's last blank line (LF LF, CR CR or LF CR is in every one)."""
    end = max(chunk.rfind(b"\n\n"), chunk.rfind(b"\r\r"), chunk.rfind(b"\n\r"))
    return chunk if end < 0 else chunk[end + 2 :]


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
    empty-data event, as both libraries do (see ``_BlockParser``).
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

    def _feed(self, httpx2: bool) -> Callable[[bytes], list[Event]]:
        """The parser's feed, once the response is known to be an event stream."""
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
            return _BlockParser(self._size(HTTPX2_MAX_EVENT_SIZE)).feed
        # httpx-sse's test, case-insensitive as media types are (RFC 9110): it accepts every
        # value httpx-sse accepts, and "Text/Event-Stream" too.
        if "text/event-stream" not in content_type.lower():
            raise _sse_error(
                "Expected response header Content-Type to contain 'text/event-stream', "
                f"got {content_type!r}",
                self._response,
            )
        return _BlockParser(self._size(DEFAULT_MAX_EVENT_SIZE)).feed

    def _too_large(self, error: EventTooLargeError, httpx2: bool) -> Exception:
        if not httpx2:
            return error
        return _sse_error(
            f"Server-sent event exceeded the {error.max_event_size} byte limit.", self._response
        )

    def _events(self, httpx2: bool) -> Iterator[Event]:
        feed = self._feed(httpx2)
        for chunk in self._response.iter_bytes():
            try:
                events = feed(chunk)
            except EventTooLargeError as error:
                yield from error.events
                too_large = self._too_large(error, httpx2)
                if too_large is error:
                    raise
                raise too_large from error
            yield from events

    async def _batches(self, httpx2: bool) -> AsyncGenerator[list[Event], None]:
        """The events as lists, one per chunk of the response's bytes."""
        feed = self._feed(httpx2)
        chunks = self._response.aiter_bytes()
        try:
            async for chunk in chunks:
                try:
                    events = feed(chunk)
                except EventTooLargeError as error:
                    yield error.events
                    too_large = self._too_large(error, httpx2)
                    if too_large is error:
                        raise
                    raise too_large from error
                yield events
        finally:
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


def _sse_error(message: str, response: Any) -> SSEError:
    """An SSEError about ``response``, which is also its own library's SSEError when that is
    not httpx (httpx2), so that code catching that library's errors catches it."""
    try:
        request = response.request
    except (AttributeError, RuntimeError):  # A response built by hand has no request.
        request = None
    cls = SSEError if isinstance(response, httpx.Response) else _foreign_sse_error(response)
    return cls(message, request=request)


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
