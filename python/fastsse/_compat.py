"""The httpx-sse API on fastsse's parser: change the import line, keep the code.

``connect_sse`` / ``aconnect_sse`` / ``EventSource`` behave as httpx-sse 0.4's do: the caller's
client and its timeouts, every keyword ``client.stream()`` takes passed through, no reconnection,
and ``SSEError`` when iteration starts on a response that is not ``text/event-stream``. Only the
parsing differs: the Rust parser reads the bytes, one call per chunk, and follows the WHATWG
algorithm where httpx-sse does not (see "Migrating from httpx-sse" in the README).

The client may be an ``httpx`` or an ``httpx2`` client (same API); errors raised for an httpx2
response are also instances of ``httpx2.SSEError``, so either library's ``except`` catches them.
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


class EventSource(Generic[ResponseT]):
    """The events of one response, as httpx-sse's ``EventSource``; the response is not
    closed here (``connect_sse`` closes it, or its own context manager does).

    ``max_event_size`` bounds the memory one event may take (httpx-sse has no bound): a larger
    event is discarded as it arrives and raises ``EventTooLargeError`` once the events before
    it have been yielded.
    """

    def __init__(self, response: ResponseT, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE):
        self._response = response
        self._max_event_size = max_event_size

    @property
    def response(self) -> ResponseT:
        return self._response

    def _check_content_type(self) -> None:
        # httpx-sse's test, case-insensitive as media types are (RFC 9110): it accepts every
        # value httpx-sse accepts, and "Text/Event-Stream" too.
        content_type = self._response.headers.get("content-type", "").partition(";")[0]
        if "text/event-stream" not in content_type.lower():
            raise _sse_error(
                "Expected response header Content-Type to contain 'text/event-stream', "
                f"got {content_type!r}",
                self._response,
            )

    def iter_sse(self) -> Iterator[Event]:
        """The response's events, parsed from its bytes as they arrive."""
        self._check_content_type()
        feed = Parser(max_event_size=self._max_event_size).feed
        for chunk in self._response.iter_bytes():
            try:
                events = feed(chunk)
            except EventTooLargeError as error:
                yield from error.events
                raise
            yield from events

    def aiter_sse(self) -> BatchIterator[Event]:
        """The response's events, parsed from its bytes as they arrive.

        An async iterator with ``aclose()`` (which closes the response's byte iterator), like
        httpx-sse's async generator; each event of a chunk is handed out without suspending
        (see ``BatchIterator``), which an async generator's per-event step would cost."""
        return BatchIterator(self._abatches())

    async def _abatches(self) -> AsyncGenerator[list[Event], None]:
        """The events as lists, one per chunk of the response's bytes."""
        self._check_content_type()
        feed = Parser(max_event_size=self._max_event_size).feed
        chunks = self._response.aiter_bytes()
        try:
            async for chunk in chunks:
                try:
                    events = feed(chunk)
                except EventTooLargeError as error:
                    yield error.events
                    raise
                yield events
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()


def _sse_headers(headers: Any) -> list[tuple[Any, Any]]:
    """The caller's headers (any form httpx takes), with httpx-sse's Accept and Cache-Control
    in place of the caller's own. The caller's object is not modified (httpx-sse's dict is)."""
    if headers is None:
        items: list[tuple[Any, Any]] = []
    elif isinstance(headers, Mapping):
        multi_items = getattr(headers, "multi_items", None)
        items = list(multi_items() if multi_items is not None else headers.items())
    else:
        items = list(headers)
    kept = [(name, value) for name, value in items if _lower(name) not in _OURS]
    return [*kept, ("Accept", "text/event-stream"), ("Cache-Control", "no-store")]


_OURS = ("accept", "cache-control")


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
