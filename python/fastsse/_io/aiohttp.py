"""httpx-aiohttp's client, made to send each request once and to name its failures as httpx
does. Imported only when httpx-aiohttp is installed.

aiohttp re-sends an idempotent request (a GET) once when the connection fails before the
response starts (``ServerDisconnectedError``, ``ClientOSError``): RFC 9112 allows it for a
reused keep-alive connection, and aiohttp does it for any. Under a stream that reconnects on its
own, every failed attempt would hit the server twice with no delay between the two, and the
stream's backoff would never see the first failure. And httpx-aiohttp maps every connection
error, a refused connection included, to ``httpx.ConnectTimeout``, and lets aiohttp's own error
for a malformed response through. A middleware on our aiohttp session does these jobs: it raises
the exception httpx's own transport raises for the same failure, which aiohttp neither retries
nor remaps.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import aiohttp
import httpx
from aiohttp.client_proto import ResponseHandler
from httpx_aiohttp import AiohttpTransport, HttpxAiohttpClient
from httpx_aiohttp.transport import AiohttpResponseStream, map_aiohttp_exceptions

__all__ = [
    "AiohttpClient",
    "Chunks",
    "NetworkStream",
    "body_of",
    "check_scheme",
    "new_session",
    "raise_as_httpx",
]


class AiohttpClient(HttpxAiohttpClient):
    """An ``httpx.AsyncClient`` on httpx-aiohttp's transport that sends each request once."""

    def _init_transport(self, *args: Any, **kwargs: Any) -> httpx.AsyncBaseTransport:
        return _send_once(super()._init_transport(*args, **kwargs))

    def _init_proxy_transport(self, *args: Any, **kwargs: Any) -> httpx.AsyncBaseTransport:
        return _send_once(super()._init_proxy_transport(*args, **kwargs))


def _send_once(transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
    if isinstance(transport, AiohttpTransport) and transport.client is None:
        # The transport makes its aiohttp session at its first request (in the event loop, as
        # aiohttp wants): have it make ours, the same as its own plus the middleware.
        transport.client = lambda: _session(transport)
        return _AsHttpx(transport)
    return transport


class _AsHttpx(httpx.AsyncBaseTransport):
    """httpx-aiohttp's transport, closer to httpx's own: refuses a URL that httpx refuses, with
    httpx's words (aiohttp's name only the URL), and hands out the connection's socket in the
    ``network_stream`` extension, as httpcore does."""

    def __init__(self, transport: AiohttpTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        check_scheme(request.url.scheme, request)
        if request.url.userinfo:
            # httpx sent the URL's credentials as an Authorization header already; aiohttp
            # refuses a URL that carries them as well (a ValueError, not httpx's words).
            request = httpx.Request(
                request.method,
                request.url.copy_with(userinfo=b""),
                headers=request.headers,
                stream=request.stream,
                extensions=request.extensions,
            )
        response = await self._transport.handle_async_request(request)
        # httpx-aiohttp keeps aiohttp's response on the body stream it returns.
        aiohttp_response = getattr(response.stream, "_aiohttp_response", None)
        connection = getattr(aiohttp_response, "connection", None)
        if connection is not None and connection.transport is not None:
            response.extensions["network_stream"] = NetworkStream(connection.transport)
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()


def check_scheme(scheme: str, request: httpx.Request | None = None) -> None:
    """httpx's UnsupportedProtocol, in its words, for a scheme that is not HTTP's (aiohttp's
    error names the URL only)."""
    if scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(
            f"Request URL has an unsupported protocol '{scheme}://'."
            if scheme
            else "Request URL is missing an 'http://' or 'https://' protocol.",
            request=request,
        )


class NetworkStream:
    """httpcore's ``network_stream`` response extension, as much of it as tells the socket: a
    stream's ``aclose()`` from another task shuts the socket down to end a blocked read, where
    a cancel scope around every read would cost more than parsing the chunk."""

    __slots__ = ("_transport",)

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def get_extra_info(self, name: str) -> Any:
        return self._transport.get_extra_info(name)


def _session(transport: AiohttpTransport) -> aiohttp.ClientSession:
    return new_session(limits=transport.limits, ssl=transport.ssl_context)


def new_session(
    *, limits: httpx.Limits, ssl: Any, headers: dict[str, str] | None = None
) -> aiohttp.ClientSession:
    """An aiohttp session that sends each request once and names its failures as httpx does
    (``async_client()``'s, and ``fastsse._io.direct``'s)."""
    connector = _Connector(
        keepalive_timeout=limits.keepalive_expiry,
        ssl=ssl,
        limit=limits.max_connections or 0,  # 0: no limit, as httpx's None
    )
    # httpx keeps the client's cookies and sends them itself: a jar in aiohttp too would keep
    # (and send) a response's cookies behind httpx's back, to every stream of the client.
    return aiohttp.ClientSession(
        connector=connector,
        middlewares=(_not_resent,),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers=headers,
    )


def raise_as_httpx(error: Exception) -> NoReturn:
    """Raises the httpx error for what ``error``, raised by an aiohttp session of
    ``new_session()`` sending a request or reading its body, says (from ``error``), or
    ``error`` itself when the middleware named it already: what the stream drivers classify."""
    if isinstance(error, aiohttp.TooManyRedirects):
        raise httpx.TooManyRedirects(
            f"Exceeded maximum allowed redirects ({error.message})."
        ) from error
    if isinstance(error, (aiohttp.NonHttpUrlRedirectClientError, aiohttp.InvalidUrlClientError)):
        raise httpx.UnsupportedProtocol(f"{type(error).__name__}: {error}") from error
    with map_aiohttp_exceptions():
        raise error


async def _not_resent(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    try:
        response = await handler(request)
    except aiohttp.ConnectionTimeoutError as error:
        raise httpx.ConnectTimeout(str(error)) from error
    except aiohttp.ClientConnectorError as error:  # refused, DNS, TLS: before any byte was sent
        raise httpx.ConnectError(str(error)) from error
    except aiohttp.ServerDisconnectedError as error:
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response."
        ) from error
    except aiohttp.ClientOSError as error:
        raise httpx.ReadError(str(error) or type(error).__name__) from error
    except aiohttp.ClientResponseError as error:
        # Raised here (no raise_for_status) only by aiohttp's parser, rejecting the response's
        # head or framing: what h11 reports as a protocol error, which a stream reconnects after.
        raise httpx.RemoteProtocolError(error.message or type(error).__name__) from error
    return response


class _Protocol(ResponseHandler):
    """aiohttp's connection protocol, which also hands an HTTP parser error met in a body (bad
    chunk framing) to the body's reader: aiohttp (3.14) reports it to the protocol only, and
    stops the read timeout, so the reader would wait for ever. The protocol's own class, not a
    wrapper per response: thousands of idle connections keep nothing more."""

    def set_exception(self, exc: BaseException, *cause: BaseException) -> None:
        super().set_exception(exc, *cause)
        body = self._payload  # The body being read, whose head this protocol parsed.
        if (
            isinstance(exc, aiohttp.http_exceptions.HttpProcessingError)  # not a timeout
            and body is not None
            and body.exception() is None
            and not body.is_eof()
        ):
            body.set_exception(aiohttp.ClientPayloadError(f"malformed response body: {exc}"))


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, whose connections speak ``_Protocol``."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._factory = functools.partial(_Protocol, loop=self._loop)  # type: ignore[assignment]


def body_of(response: httpx.Response) -> AsyncIterator[bytes] | None:
    """The body of a response of our transport (``_AsHttpx``), read from aiohttp's own reader:
    httpx's and httpx-aiohttp's layers (three async generators and aiohttp's chunked iterator)
    cost more per chunk than parsing it. None for any other response."""
    # httpx's BoundAsyncStream wraps it (``fastsse._io.direct``'s responses have no stream)
    stream = getattr(getattr(response, "stream", None), "_stream", None)
    aiohttp_response = getattr(stream, "_aiohttp_response", None)
    if type(stream) is not AiohttpResponseStream or aiohttp_response is None:
        return None
    response.is_stream_consumed = True
    return Chunks(aiohttp_response.content)


class Chunks:
    """A body's chunks, what arrived as it arrives; aiohttp's errors named as httpx names
    them. Not an async generator: an idle stream keeps no frame of it, and the event loop
    does not track it."""

    __slots__ = ("_content",)

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self._content = content

    def __aiter__(self) -> Chunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._content.readany()
        except Exception as error:
            raise_as_httpx(error)
        if not chunk:
            raise StopAsyncIteration
        return chunk
