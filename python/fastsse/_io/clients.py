"""What differs between the HTTP client libraries a stream accepts: httpx, and httpx2 (pydantic's
fork of httpx, which the OpenAI and Anthropic SDKs use: the same API, its own classes).

The stream drivers never name one library's exception classes: they have them classified here,
and find here the socket to shut down (on uvloop too).
fastsse never imports httpx2: a client of it only exists if the caller imported it.
"""

from __future__ import annotations

import asyncio.trsock
import contextlib
import socket
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, Union

import httpx

from fastsse._errors import FastSSEError
from fastsse.protocol import FaultKind

if TYPE_CHECKING:
    # Only for the type checker: fastsse never imports httpx2 (without it installed, a user's
    # type checker sees these as httpx's clients or anything).
    import httpx2

    #: The client a sync stream takes: httpx's or httpx2's (pydantic's fork).
    SyncClient = Union[httpx.Client, httpx2.Client]
    #: The client an async stream takes: httpx's or httpx2's.
    AsyncClient = Union[httpx.AsyncClient, httpx2.AsyncClient]
else:
    SyncClient = httpx.Client
    AsyncClient = httpx.AsyncClient

__all__ = [
    "LIBRARIES",
    "AsyncClient",
    "Socket",
    "SyncClient",
    "accepts",
    "classes",
    "classify",
    "connection_pool",
    "library_of",
    "pooled_socket",
    "response_socket",
    "shutdown",
    "socket_of",
]

#: The client libraries, by the name of their top-level module.
LIBRARIES = ("httpx", "httpx2")


def classes(name: str) -> tuple[type, ...]:
    """The class ``name`` (``"Timeout"``, ``"Auth"``, ``"ConnectError"``...) of every client
    library loaded: httpx's, and httpx2's when the caller imported it."""
    return tuple(getattr(sys.modules[lib], name) for lib in LIBRARIES if lib in sys.modules)


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


def accepts(client: object, classes: tuple[type, ...]) -> bool:
    """Whether ``client`` is an instance of one of ``classes`` (httpx's), or of the class of the
    same name in another client library (httpx2's)."""
    if isinstance(client, classes):
        return True
    try:
        library = library_of(client)
    except TypeError:
        return False
    names = {cls.__name__ for cls in classes}
    return any(isinstance(client, getattr(library, name)) for name in names)


def classify(error: BaseException) -> FaultKind | None:
    """The stream's name for a transport error of httpx or httpx2 (on any transport), or None
    when ``error`` is none of theirs (the stream then lets it propagate)."""
    if isinstance(error, FastSSEError):
        return None  # SSEError derives from httpx.TransportError, as httpx-sse's does.
    for name in LIBRARIES:
        lib = sys.modules.get(name)
        if lib is None:
            continue
        if isinstance(error, (lib.UnsupportedProtocol, lib.LocalProtocolError, lib.InvalidURL)):
            return "invalid_request"  # Our own request is at fault: asking again cannot help.
        if isinstance(error, lib.TransportError):
            return _kind(error, lib)
        if isinstance(error, lib.TooManyRedirects):
            return "redirect"  # A loop (an empty Location, say): asking again loops again.
        if isinstance(error, (lib.DecodingError, lib.StreamClosed)):
            return "broken"  # The body's content coding broke, or the response was closed.
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


def socket_of(network_stream: Any) -> Socket | None:
    """The socket of an httpcore (or httpcore2) network stream, unless it carries HTTP/2 (whose
    socket other requests share, so it is never ours to shut down)."""
    if network_stream is None:
        return None
    ssl_object = network_stream.get_extra_info("ssl_object")
    if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
        return None
    return _socket(network_stream.get_extra_info("socket"))


def response_socket(response: Any) -> Socket | None:
    """``socket_of`` the connection ``response`` came on: its HTTP version tells HTTP/2 apart
    without asking the stream for its TLS object (anyio answers each question with a
    getpeername() call)."""
    network_stream = response.extensions.get("network_stream")
    if network_stream is None or response.http_version == "HTTP/2":
        return None
    return _socket(network_stream.get_extra_info("socket"))


def connection_pool(client: Any, url: Any) -> object:
    """httpcore's (or httpcore2's) connection pool through which ``client`` sends a request to
    ``url``; None for a transport without one."""
    transport_for_url = getattr(client, "_transport_for_url", None)
    if transport_for_url is None:
        return None
    return getattr(transport_for_url(url), "_pool", None)


def pooled_socket(pool: object, request: object) -> Socket | None:
    """The socket of the connection that ``pool`` (``connection_pool``'s) gave ``request`` (the
    httpcore request that its trace events carry): a keep-alive connection reused from the pool
    makes no connect event, so this is how its socket is known before the response headers
    arrive. None when the pool keeps it otherwise (or it carries HTTP/2)."""
    for pool_request in list(getattr(pool, "_requests", ())):
        if getattr(pool_request, "request", None) is request:
            connection = getattr(getattr(pool_request, "connection", None), "_connection", None)
            return socket_of(getattr(connection, "_network_stream", None))
    return None


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
