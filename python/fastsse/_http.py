"""What the stream drivers need from httpx: its errors in the machine's words, the request, the
socket to shut down, and an error body's first bytes.

A driver for another client library (httpx2, say) extends ``classify`` and ``SYNC_CLIENTS`` /
``ASYNC_CLIENTS``; the machine (``_machine.py``) knows none of this.
"""

from __future__ import annotations

import asyncio.trsock
import contextlib
import socket
from collections.abc import Iterator
from typing import Any, Protocol

import httpx

from fastsse._errors import FastSSEError
from fastsse._machine import BODY_PREVIEW, FaultKind

#: The client classes a sync / async stream accepts.
SYNC_CLIENTS: tuple[type, ...] = (httpx.Client,)
ASYNC_CLIENTS: tuple[type, ...] = (httpx.AsyncClient,)

#: An error response's body only decorates the error: wait this long at most for it.
BODY_PREVIEW_TIMEOUT = 1.0


def classify(error: BaseException) -> FaultKind | None:
    """The machine's name for an exception of the client library, or None when it is none of
    the client's (the driver then lets it propagate)."""
    if isinstance(error, FastSSEError):
        return None
    if isinstance(error, (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL)):
        return "invalid_request"  # Our own request is at fault: asking again cannot help.
    if isinstance(error, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return "connect_timeout"
    if isinstance(error, httpx.ReadTimeout):
        return "read_timeout"
    if isinstance(error, httpx.ConnectError):
        for cause in _chain(error):
            if isinstance(cause, ConnectionRefusedError):
                return "refused"
            if isinstance(cause, socket.gaierror):
                return "dns"
        return "connect"
    if isinstance(error, httpx.TransportError):
        return "broken"
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from, innermost last (bounded)."""
    seen = 0
    cause: BaseException | None = error
    while cause is not None and seen < 16:
        yield cause
        cause = cause.__cause__ or cause.__context__
        seen += 1


def request_timeout(
    base: httpx.Timeout, *, connect: float | None, read: float | None
) -> httpx.Timeout:
    """``base`` (the client's or the stream's ``timeout=``) with the stream's read timeout, and
    its connect timeout when the stream was given one (None keeps ``base``'s)."""
    return httpx.Timeout(
        connect=base.connect if connect is None else connect,
        read=read,
        write=base.write,
        pool=base.pool,
    )


def add_cookies(
    client: httpx.Client | httpx.AsyncClient, request: httpx.Request, cookies: Any
) -> None:
    """Per-request cookies, merged over the client's as httpx does (whose own per-request
    ``cookies=`` is deprecated)."""
    merged = httpx.Cookies(client.cookies)
    merged.update(httpx.Cookies(cookies))
    request.headers.pop("Cookie", None)
    merged.set_cookie_header(request)


class Socket(Protocol):
    """A socket.socket, or asyncio's TransportSocket view of one."""

    def shutdown(self, how: int, /) -> None: ...


def socket_of(network_stream: Any) -> Socket | None:
    """The socket of an HTTP/1 connection (that of an HTTP/2 one is shared by other requests,
    so it is never ours to shut down)."""
    if network_stream is None:
        return None
    ssl_object = network_stream.get_extra_info("ssl_object")
    if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
        return None
    sock = network_stream.get_extra_info("socket")
    return sock if isinstance(sock, (socket.socket, asyncio.trsock.TransportSocket)) else None


def shutdown(sock: Socket | None) -> None:
    """Wakes a read blocked on ``sock`` in another thread or task (closing the fd would not)."""
    if sock is not None:
        with contextlib.suppress(OSError):  # Already closed: nothing to wake.
            sock.shutdown(socket.SHUT_RDWR)


# An error response's body only decorates the error message: its first chunk is enough, and a
# body that stalls or breaks must neither delay the error nor turn a 4xx into a reconnect.


def _preview_timeout(response: httpx.Response) -> None:
    """Shortens the read timeout for the rest of ``response``'s body: httpcore reads it from
    the request's extensions at each read."""
    timeout = dict(response.request.extensions.get("timeout", {}))
    read = timeout.get("read")
    timeout["read"] = BODY_PREVIEW_TIMEOUT if read is None else min(read, BODY_PREVIEW_TIMEOUT)
    response.request.extensions["timeout"] = timeout


async def aread_preview(response: httpx.Response) -> bytes:
    _preview_timeout(response)
    with contextlib.suppress(httpx.TransportError):
        async for chunk in response.aiter_bytes():
            return chunk[:BODY_PREVIEW]
    return b""


def read_preview(response: httpx.Response) -> bytes:
    _preview_timeout(response)
    with contextlib.suppress(httpx.TransportError):
        for chunk in response.iter_bytes():
            return chunk[:BODY_PREVIEW]
    return b""
