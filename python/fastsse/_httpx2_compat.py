"""httpx2's built-in SSE API on fastsse's parser: ``client.sse(url)`` becomes
``fastsse.sse(client, url)``, and ``httpx2.EventSource(response)`` becomes
``fastsse.EventSource(response)``, iterated the same way.

``sse()`` takes ``client.sse()``'s keywords and behaves as it does, with an httpx2 client or an
httpx one: ``Accept: text/event-stream`` and ``Cache-Control: no-store`` unless the caller's
headers set them, the client's own defaults for what is not given, the response closed with the
block, no reconnection. httpx2 is never imported here: its ``SSEError`` is found on the
caller's response (see ``_compat._sse_error``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Generic, overload

import httpx

from fastsse._compat import (
    HTTPX2_MAX_EVENT_SIZE,
    EventSource,
    ResponseT,
    _AsyncClient,
    _Client,
    _header_items,
    _lower,
    check_max_event_size,
)

__all__ = ["sse"]

_UNSET: Any = object()  # A keyword not given: the client's default applies, as in client.sse().


@overload
def sse(
    client: httpx.Client | httpx.AsyncClient,
    url: httpx.URL | str,
    *,
    method: str = ...,
    content: Any = ...,
    data: Any = ...,
    files: Any = ...,
    json: Any = ...,
    params: Any = ...,
    headers: Any = ...,
    cookies: Any = ...,
    auth: Any = ...,
    follow_redirects: bool = ...,
    timeout: Any = ...,
    extensions: Mapping[str, Any] | None = ...,
    max_event_size: int | None = ...,
) -> SSEConnection[httpx.Response]: ...
@overload
def sse(
    client: _Client[ResponseT] | _AsyncClient[ResponseT],
    url: Any,
    *,
    method: str = ...,
    content: Any = ...,
    data: Any = ...,
    files: Any = ...,
    json: Any = ...,
    params: Any = ...,
    headers: Any = ...,
    cookies: Any = ...,
    auth: Any = ...,
    follow_redirects: bool = ...,
    timeout: Any = ...,
    extensions: Mapping[str, Any] | None = ...,
    max_event_size: int | None = ...,
) -> SSEConnection[ResponseT]: ...
def sse(
    client: Any,
    url: Any,
    *,
    method: str = "GET",
    content: Any = None,
    data: Any = None,
    files: Any = None,
    json: Any = None,
    params: Any = None,
    headers: Any = None,
    cookies: Any = None,
    auth: Any = _UNSET,
    follow_redirects: bool = _UNSET,
    timeout: Any = _UNSET,
    extensions: Mapping[str, Any] | None = None,
    max_event_size: int | None = HTTPX2_MAX_EVENT_SIZE,
) -> SSEConnection[Any]:
    """httpx2's ``client.sse(url, ...)`` for any httpx or httpx2 client: ``with
    fastsse.sse(client, url) as source`` (``async with`` for an async client) gives an
    ``EventSource`` to iterate (``for sse in source`` / ``async for sse in source``).

    The keywords are ``client.sse()``'s: the request's (as ``client.stream()`` takes them;
    ``auth``, ``follow_redirects`` and ``timeout`` default to the client's) and
    ``max_event_size`` (bytes, default 1 MiB as httpx2's; None for no bound), past which an
    event raises ``SSEError`` (an ``httpx2.SSEError`` on an httpx2 client).
    """
    kwargs: dict[str, Any] = {
        "content": content,
        "data": data,
        "files": files,
        "json": json,
        "params": params,
        "headers": _headers(headers),
        "cookies": cookies,
        "extensions": extensions,
    }
    # The client's defaults apply unless given: each library has its own "use the client's
    # default" marker, so a keyword not given is not passed at all.
    for name, value in (
        ("auth", auth),
        ("follow_redirects", follow_redirects),
        ("timeout", timeout),
    ):
        if value is not _UNSET:
            kwargs[name] = value
    check_max_event_size(max_event_size)  # now, not when the block is entered
    return SSEConnection(client, method, url, kwargs, max_event_size)


def _headers(headers: Any) -> list[tuple[Any, Any]]:
    """httpx2's Accept and Cache-Control, then the caller's headers (any form httpx takes),
    which win: a header the caller sets replaces ours."""
    items = _header_items(headers)
    given = {_lower(name) for name, _ in items}
    ours = [
        (name, value)
        for name, value in (("Accept", "text/event-stream"), ("Cache-Control", "no-store"))
        if name.lower() not in given
    ]
    return [*ours, *items]


class SSEConnection(Generic[ResponseT]):
    """What ``fastsse.sse()`` returns: entered with ``with`` for a sync client and ``async
    with`` for an async one, it sends the request and gives the response's ``EventSource``;
    leaving the block closes the response."""

    def __init__(
        self,
        client: Any,
        method: str,
        url: Any,
        kwargs: dict[str, Any],
        max_event_size: int | None,
    ) -> None:
        self._client = client
        self._request = (method, url, kwargs)
        self._max_event_size = max_event_size
        self._stream: Any = None

    def _open(self, entered_with: str) -> Any:
        if self._stream is not None:
            raise RuntimeError("a fastsse.sse() connection is entered once")
        method, url, kwargs = self._request
        stream = self._client.stream(method, url, **kwargs)
        needs = "__enter__" if entered_with == "with" else "__aenter__"
        if not hasattr(stream, needs):
            other = "async with" if entered_with == "with" else "with"
            raise TypeError(
                f"fastsse.sse() on a {type(self._client).__name__} is entered with "
                f"'{other}', not '{entered_with}'"
            )
        self._stream = stream
        return stream

    def __enter__(self) -> EventSource[ResponseT]:
        response = self._open("with").__enter__()
        return EventSource(response, max_event_size=self._max_event_size)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        result: bool | None = self._stream.__exit__(exc_type, exc, traceback)
        return result

    async def __aenter__(self) -> EventSource[ResponseT]:
        response = await self._open("async with").__aenter__()
        return EventSource(response, max_event_size=self._max_event_size)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        result: bool | None = await self._stream.__aexit__(exc_type, exc, traceback)
        return result
