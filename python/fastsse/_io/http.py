"""What the stream drivers need from httpx (and httpx2, and httpx-aiohttp's transport): their
errors in the machine's words, the request, the socket to shut down, and an error body's first
bytes. What differs between the client libraries is in ``_clients.py``; the machine
(``fastsse.protocol``) knows none of this.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx

from fastsse._io.clients import (
    Socket,
    accepts,
    classes,
    classify,
    connection_pool,
    pooled_socket,
    response_socket,
    shutdown,
    socket_of,
)
from fastsse.protocol import BODY_PREVIEW

__all__ = [
    "ASYNC_CLIENTS",
    "SYNC_CLIENTS",
    "Socket",
    "abody",
    "accepts",
    "add_cookies",
    "aread_preview",
    "body",
    "classes",
    "classify",
    "connection_pool",
    "pooled_socket",
    "read_preview",
    "request_timeout",
    "response_socket",
    "shown_of",
    "shutdown",
    "socket_of",
]

#: The client classes a sync / async stream accepts (and httpx2's of the same names: ``accepts``).
SYNC_CLIENTS: tuple[type, ...] = (httpx.Client,)
ASYNC_CLIENTS: tuple[type, ...] = (httpx.AsyncClient,)

#: An error response's body only decorates the error: wait this long at most for it.
BODY_PREVIEW_TIMEOUT = 1.0


def request_timeout(
    base: Any, *, connect: float | None, read: float | None
) -> tuple[float | None, float | None, float | None, float | None]:
    """``base`` (the client's or the stream's ``timeout=``) with the stream's read timeout, and
    its connect timeout when the stream was given one (None keeps ``base``'s): as the (connect,
    read, write, pool) tuple that httpx and httpx2 both take (each takes only its own
    ``Timeout`` class)."""
    return (base.connect if connect is None else connect, read, base.write, base.pool)


def _needs_decoding(response: httpx.Response) -> bool:
    """Whether the body must be read through httpx's content decoding: it has a content coding,
    or it was read already (then only ``iter_bytes`` has it)."""
    return response.is_stream_consumed or "content-encoding" in response.headers


def body(response: httpx.Response) -> Iterator[bytes]:
    """The body's chunks as they arrive. Without a content coding httpx's decoding only passes
    the bytes through, a generator layer per chunk: then the raw ones are read."""
    return response.iter_bytes() if _needs_decoding(response) else response.iter_raw()


def abody(response: httpx.Response) -> AsyncIterator[bytes]:
    """``body`` for an async client; on ``async_client()``'s aiohttp transport, read from
    aiohttp's reader itself (see ``fastsse._io.aiohttp.body_of``)."""
    if _needs_decoding(response):
        return response.aiter_bytes()
    aiohttp_glue = sys.modules.get("fastsse._io.aiohttp")  # loaded only with such a client
    if aiohttp_glue is not None:
        chunks: AsyncIterator[bytes] | None = aiohttp_glue.body_of(response)
        if chunks is not None:
            return chunks
    return response.aiter_raw()


def shown_of(response: Any) -> Any:
    """What the caller sees of ``response`` when it is not the response itself (``shown`` of
    ``fastsse._io.direct``'s responses, an ``httpx.Response`` made when first used); None for
    httpx's and httpx2's responses."""
    return getattr(response, "shown", None)


def add_cookies(client: Any, request: Any, cookies: Any) -> None:
    """Per-request cookies, merged over the client's as httpx does (whose own per-request
    ``cookies=`` is deprecated)."""
    cookie_class = type(client.cookies)  # httpx's or httpx2's, as the client is
    # A new jar, never the client's own (httpx2 would wrap that very jar, policy and all): the
    # request's cookies must not be stored into a client other streams share.
    merged = cookie_class()
    merged.update(client.cookies)
    merged.update(cookie_class(cookies))
    request.headers.pop("Cookie", None)
    merged.set_cookie_header(request)


# An error response's body only decorates the error message: its first chunk is enough, and a
# body that stalls or breaks must neither delay the error nor turn a 4xx into a reconnect.


def _preview_timeout(response: httpx.Response) -> None:
    """Shortens the read timeout for the rest of ``response``'s body: httpcore reads it from
    the request's extensions at each read. (A transport that takes its timeouts once, with the
    request, has no such request: ``aread_preview`` bounds it.)"""
    request = getattr(response, "request", None)
    if request is None:
        return
    timeout = dict(request.extensions.get("timeout", {}))
    read = timeout.get("read")
    timeout["read"] = BODY_PREVIEW_TIMEOUT if read is None else min(read, BODY_PREVIEW_TIMEOUT)
    request.extensions["timeout"] = timeout


async def aread_preview(response: httpx.Response) -> bytes:
    _preview_timeout(response)
    # A transport that takes its timeouts once, with the request (httpx-aiohttp's), is bounded
    # here instead.
    with anyio.move_on_after(BODY_PREVIEW_TIMEOUT):
        try:
            async for chunk in response.aiter_bytes():
                return chunk[:BODY_PREVIEW]
        except Exception as error:
            if classify(error) is None:
                raise
    return b""


def read_preview(response: httpx.Response) -> bytes:
    _preview_timeout(response)
    try:
        for chunk in response.iter_bytes():
            return chunk[:BODY_PREVIEW]
    except Exception as error:
        if classify(error) is None:
            raise
    return b""
