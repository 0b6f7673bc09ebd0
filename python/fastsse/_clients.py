"""What differs between the HTTP client libraries a stream accepts: httpx, and httpx2 (pydantic's
fork of httpx, which the OpenAI and Anthropic SDKs use: the same API, its own classes).

A stream never names one library's classes: it asks here which library a client comes from,
builds its timeouts from that library, and has any of their exceptions classified. httpx2 is
never imported by fastsse: a client of it can only exist if the caller imported it.
"""

from __future__ import annotations

import asyncio.trsock
import contextlib
import socket
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Literal, Protocol

__all__ = [
    "FaultKind",
    "Socket",
    "check_client",
    "classify",
    "is_async",
    "library_of",
    "network_socket",
    "shutdown",
    "socket_of",
    "timeout",
]

#: The client libraries, by the name of their top-level module.
LIBRARIES = ("httpx", "httpx2")

#: How a connection attempt or a connection failed, in the stream's words.
FaultKind = Literal[
    "refused",  # nothing listens on the port
    "dns",  # the host name does not resolve
    "connect_timeout",  # no answer to the connection attempt in time
    "connect",  # any other failure to connect (TLS, network unreachable, ...)
    "read_timeout",  # no bytes for read_timeout seconds
    "broken",  # the connection was reset or cut, before or during the response
    "invalid_request",  # the request itself cannot be sent (scheme, URL, headers)
]


def library_of(client: object) -> ModuleType:
    """The module (httpx or httpx2) whose ``Client`` or ``AsyncClient`` ``client`` is (a subclass
    of); TypeError for anything else."""
    for cls in type(client).__mro__:
        module = sys.modules.get(cls.__module__.partition(".")[0])
        if (
            module is not None
            and module.__name__ in LIBRARIES
            and cls.__name__ in ("Client", "AsyncClient")
            and getattr(module, cls.__name__, None) is cls
        ):
            return module
    raise TypeError(
        f"client must be an httpx or httpx2 Client or AsyncClient, not {type(client).__name__}"
    )


def is_async(client: object) -> bool:
    """Whether ``client`` is an ``AsyncClient`` (of httpx or httpx2); TypeError if no client."""
    return isinstance(client, library_of(client).AsyncClient)


def check_client(client: object, *, asynchronous: bool) -> None:
    """Raises a clear TypeError when ``client`` is not the kind of client the stream drives."""
    if is_async(client) != asynchronous:
        wanted, got = ("AsyncClient", "Client") if asynchronous else ("Client", "AsyncClient")
        stream = "AsyncEventStream" if asynchronous else "EventStream"
        raise TypeError(
            f"{stream} needs an {wanted} (httpx or httpx2), got a {got}: "
            f"{type(client).__module__}.{type(client).__qualname__}"
        )


def timeout(client: object, *, connect: float | None, read: float | None) -> Any:
    """A ``Timeout`` of ``client``'s own library: each library only understands its own."""
    return library_of(client).Timeout(connect, read=read)


def classify(error: BaseException) -> FaultKind | None:
    """The stream's name for a transport error of httpx or httpx2 (on any transport), or None
    when ``error`` is none of theirs (the stream then lets it propagate)."""
    for name in LIBRARIES:
        lib = sys.modules.get(name)
        if lib is None:
            continue
        if isinstance(error, (lib.UnsupportedProtocol, lib.LocalProtocolError, lib.InvalidURL)):
            return "invalid_request"  # Our own request is at fault: asking again cannot help.
        if isinstance(error, lib.TransportError):
            return _kind(error, lib)
    return None


def _kind(error: BaseException, lib: ModuleType) -> FaultKind:
    if isinstance(error, (lib.ConnectTimeout, lib.PoolTimeout)):
        return "connect_timeout"
    if isinstance(error, lib.ReadTimeout):
        return "read_timeout"
    if isinstance(error, lib.ConnectError):
        for cause in _chain(error):
            if isinstance(cause, ConnectionRefusedError):
                return "refused"
            if isinstance(cause, socket.gaierror):
                return "dns"
        return "connect"
    return "broken"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from, innermost last (bounded)."""
    cause: BaseException | None = error
    for _ in range(16):
        if cause is None:
            return
        yield cause
        cause = cause.__cause__ or cause.__context__


class Socket(Protocol):
    """What ``shutdown`` needs of a socket: its file descriptor."""

    def fileno(self) -> int: ...


def socket_of(response: Any) -> Socket | None:
    """The socket of ``response``'s HTTP/1 connection, on httpx's or httpx2's own transport or
    on httpx-aiohttp's; None when unknown, or shared with other requests (HTTP/2)."""
    network_stream = response.extensions.get("network_stream")
    if network_stream is not None:
        return network_socket(network_stream)
    # httpx-aiohttp keeps aiohttp's response on its byte stream (it speaks HTTP/1 only).
    aiohttp_response = getattr(response.stream, "_aiohttp_response", None)
    connection = getattr(aiohttp_response, "connection", None)
    transport = getattr(connection, "transport", None)
    return _socket(None if transport is None else transport.get_extra_info("socket"))


def network_socket(network_stream: Any) -> Socket | None:
    """The socket of an httpcore (or httpcore2) network stream, unless it carries HTTP/2."""
    if network_stream is None:
        return None
    ssl_object = network_stream.get_extra_info("ssl_object")
    if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
        return None
    return _socket(network_stream.get_extra_info("socket"))


def _socket(sock: Any) -> Socket | None:
    return sock if callable(getattr(sock, "fileno", None)) else None


def shutdown(sock: Socket | None) -> None:
    """Wakes a read blocked on ``sock`` in another thread or task (closing the fd would not)."""
    if sock is None:
        return
    with contextlib.suppress(OSError, ValueError):  # Already closed: nothing to wake.
        if isinstance(sock, (socket.socket, asyncio.trsock.TransportSocket)):
            sock.shutdown(socket.SHUT_RDWR)
            return
        # uvloop's socket view refuses shutdown(): shut the socket down through a duplicate of
        # its descriptor (both name the same socket), then close only the duplicate.
        fd = sock.fileno()
        if fd >= 0:
            with socket.socket(fileno=socket.dup(fd)) as duplicate:
                duplicate.shutdown(socket.SHUT_RDWR)
