"""The client of ``AsyncEventStream(url)`` made without ``client=``, on asyncio with the aiohttp
extra installed: the request goes straight to an aiohttp session, and the response is read
from aiohttp's own, with no httpx object in between.

Through httpx (``async_client()``) each request costs httpx's request building, its send
layers, a cookie extraction and httpx-aiohttp's translation, and each open stream keeps an
``httpx.Request``, an ``httpx.Response`` and their headers: about as much CPU again as aiohttp
spends opening the connection, and 4 KiB per idle stream (benches/test_bench_many_streams.py).
Here the stream keeps aiohttp's response and a small view of it, ``DirectResponse``, which the
driver and the machine read; what the caller sees of it (``stream.response``, ``on_connect``,
a fault's or an error's ``response``) is an ``httpx.Response``, made at its first use.

Only what this path does as httpx would comes here (``transport.sendable_directly``): a stream
with ``auth=``, ``data=``, ``files=``, ``extensions=`` or credentials in its URL goes through
httpx.
The aiohttp session is ``fastsse._io.aiohttp``'s: a failed request is never sent again behind
the stream's back, and aiohttp's errors are named as httpx names them, which the driver
classifies as it does httpx's.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp
import httpx
import yarl
from multidict import CIMultiDict

from fastsse._io import aiohttp as _glue
from fastsse._io import transport as _transport

__all__ = ["DirectClient", "DirectRequest", "DirectResponse", "ShownResponse"]

#: httpx's default; aiohttp's is 10.
MAX_REDIRECTS = 20
#: The statuses httpx follows (with a Location).
_REDIRECTS = frozenset((301, 302, 303, 307, 308))
#: What httpx's client sends unless told otherwise: the server sees the same client whichever
#: path a stream takes. (aiohttp adds Accept-Encoding for what it can decode, and decodes it.)
_USER_AGENT = f"python-httpx/{httpx.__version__}"


class DirectRequest:
    """A request as this client sends it; ``headers`` takes a ``Cookie`` as httpx's cookie
    jar sets one (``httpx.Cookies.set_cookie_header``)."""

    __slots__ = ("allow_redirects", "body", "headers", "method", "timeout", "url")

    def __init__(
        self,
        method: str,
        url: str,
        headers: CIMultiDict[str],
        body: bytes | None,
        timeout: _Timeout,
        allow_redirects: bool,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.allow_redirects = allow_redirects


class DirectClient:
    """One aiohttp session for up to ``pool.STREAMS_PER_CLIENT`` streams of an event loop,
    with what the streams read of an ``httpx.AsyncClient``: ``timeout``, ``cookies`` (always
    empty: a shared client keeps none), ``build_request``, ``send`` and ``aclose``."""

    def __init__(
        self,
        *,
        timeout: httpx.Timeout | float = _transport.DEFAULT_CONNECT_TIMEOUT,
        follow_redirects: bool = True,
        limits: httpx.Limits | None = None,
        cookies: object = None,  # What the pool passes to a client that must keep none.
    ) -> None:
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.follow_redirects = follow_redirects
        self.cookies = httpx.Cookies()
        self._limits = limits or httpx.Limits()
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def build_request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        headers: Iterable[tuple[bytes, bytes]],
        timeout: tuple[float | None, float | None, float | None, float | None],
        params: Any = None,
        json: Any = None,
        content: str | bytes | None = None,
    ) -> DirectRequest:
        """The request ``httpx.AsyncClient.build_request`` would make of the same arguments."""
        sent = CIMultiDict(_as_str(name, value) for name, value in headers)
        body = None
        url = _encoded(url)
        if params is not None or json is not None or content is not None:
            # Rare (a POST to an LLM API): httpx encodes them, so that the bytes are its own.
            built = httpx.Request(method, url, params=params, json=json, content=content)
            url = str(built.url)
            body = built.content or None
            for name in ("Content-Type", "Content-Length"):
                if name in built.headers and name not in sent:
                    sent[name] = built.headers[name]
        return DirectRequest(method, url, sent, body, _timeout(*timeout), self.follow_redirects)

    async def send(
        self, request: DirectRequest, *, stream: bool = True, follow_redirects: bool | None = None
    ) -> DirectResponse:
        """The response's head, its body left to read: the errors are httpx's (see
        ``_glue.raise_as_httpx``)."""
        url = _yarl_url(request.url)
        _glue.check_scheme(url.scheme)
        if self._closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        session = self._session
        if session is None:
            session = self._session = _glue.new_session(
                limits=self._limits,
                ssl=_transport.shared_ssl_context(),
                headers={"User-Agent": _USER_AGENT},
            )
        follow = request.allow_redirects if follow_redirects is None else follow_redirects
        try:
            response = await session.request(
                request.method,
                url,
                headers=request.headers,
                data=request.body,
                allow_redirects=follow,
                max_redirects=MAX_REDIRECTS,
                timeout=request.timeout.aiohttp,
            )
        except Exception as error:
            _glue.raise_as_httpx(error)
        if follow and response.status in _REDIRECTS and response.headers.get("Location") == "":
            # httpx reads an empty Location as the same URL, again and again until its limit;
            # aiohttp stops there, as if the client followed no redirect.
            response.release()
            raise httpx.TooManyRedirects(
                f"Exceeded maximum allowed redirects: {response.status} to an empty Location, "
                "which is the same URL"
            )
        return DirectResponse(response, request.timeout)

    @property
    def is_closed(self) -> bool:
        """Whether ``aclose()`` was called (as httpx's clients say)."""
        return self._closed

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()


class DirectResponse(_glue.Chunks):
    """What the driver and the machine read of an aiohttp response (``ResponseLike``, and the
    body, whose chunks it reads itself: no object more per stream); ``shown`` is what the
    caller sees of it."""

    __slots__ = ("_response", "_shown", "_timeout")

    http_version = "HTTP/1.1"
    #: aiohttp decodes a content coding itself: the body is read as it comes.
    is_stream_consumed = False

    def __init__(self, response: aiohttp.ClientResponse, timeout: _Timeout) -> None:
        super().__init__(response.content)
        self._response = response
        self._timeout = timeout
        self._shown: ShownResponse | None = None

    @property
    def status_code(self) -> int:
        return self._response.status

    @property
    def reason_phrase(self) -> str:
        return self._response.reason or ""

    @property
    def headers(self) -> Any:
        """aiohttp's headers: ``get`` and ``in`` ignore the name's case."""
        return self._response.headers

    @property
    def url(self) -> yarl.URL:
        return self._response.url

    @property
    def extensions(self) -> dict[str, Any]:
        """httpcore's ``network_stream``: the socket the driver shuts down to wake a read."""
        connection = self._response.connection
        if connection is None or connection.transport is None:
            return {}
        return {"network_stream": _glue.NetworkStream(connection.transport)}

    @property
    def shown(self) -> ShownResponse:
        """The ``httpx.Response`` the caller sees, the same one every time."""
        if self._shown is None:
            self._shown = ShownResponse(self._response, self._timeout)
        return self._shown

    def aiter_raw(self) -> AsyncIterator[bytes]:
        return self

    aiter_bytes = aiter_raw

    async def aclose(self) -> None:
        # Released: back to the pool when the body was read to its end, else closed.
        self._response.release()


class ShownResponse(httpx.Response):
    """An aiohttp response as an ``httpx.Response``, made at its first use: until then it
    holds aiohttp's response only (most never get looked at, and thousands of idle streams
    each keep their latest). Its body is the stream's: reading it raises StreamConsumed."""

    __slots__ = ("_source", "_timeout")

    def __init__(self, response: aiohttp.ClientResponse, timeout: _Timeout) -> None:
        self._source: aiohttp.ClientResponse | None = response
        self._timeout = timeout

    def __getattr__(self, name: str) -> Any:
        # Only for what is missing: httpx.Response's fields, until they are made here.
        source = self._source
        if source is None:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        self._source = None
        _fill(self, source, self._timeout)
        return getattr(self, name)


def _fill(shown: httpx.Response, source: aiohttp.ClientResponse, timeout: _Timeout) -> None:
    info = source.request_info
    request = httpx.Request(
        info.method,
        str(source.url),
        headers=[
            (name.encode("ascii"), value.encode("utf-8", "surrogateescape"))
            for name, value in info.headers.items()
        ],
        extensions={"timeout": dict(timeout.httpx)},
    )
    extensions = {"http_version": b"HTTP/1.1"}
    if source.reason:
        extensions["reason_phrase"] = source.reason.encode("latin-1", "replace")
    httpx.Response.__init__(
        shown,
        source.status,
        headers=list(source.raw_headers),
        stream=_READ_BY_THE_STREAM,
        request=request,
        extensions=extensions,
        history=[ShownResponse(earlier, timeout) for earlier in source.history],
    )
    shown.is_stream_consumed = True
    shown.is_closed = source.closed


class _ReadByTheStream(httpx.AsyncByteStream):
    """The body of a shown response: the stream reads it (httpx raises StreamConsumed before
    it gets here)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        raise httpx.StreamConsumed()
        yield b""  # pragma: no cover


_READ_BY_THE_STREAM = _ReadByTheStream()


class _Timeout:
    """A request's timeouts in aiohttp's terms and in httpx's (what the shown request's
    ``extensions`` say). httpx's pool timeout bounds the wait for a free connection of the
    client's pool, which a client made for at most as many streams as its pool holds never
    waits for: it has no aiohttp timer (aiohttp's ``connect`` would arm one per request)."""

    __slots__ = ("aiohttp", "httpx")

    def __init__(
        self, connect: float | None, read: float | None, write: float | None, pool: float | None
    ) -> None:
        self.aiohttp = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
        self.httpx = {"connect": connect, "read": read, "write": write, "pool": pool}


#: One for all the streams with the same timeouts (thousands of streams share a few).
_timeout = functools.lru_cache(maxsize=64)(_Timeout)


@functools.lru_cache(maxsize=256)
def _as_str(name: bytes, value: bytes) -> tuple[str, str]:
    """A header as aiohttp takes it, str, which it encodes as UTF-8 with surrogateescape: the
    bytes come back as they were (a Last-Event-ID that is not ASCII, say). The same strings
    for every stream (an idle connection's request keeps its headers)."""
    return name.decode("ascii"), value.decode("utf-8", "surrogateescape")


@functools.lru_cache(maxsize=1024)
def _encoded(url: str | httpx.URL) -> str:
    """``url`` as httpx sends it (percent-encoded, IDNA host): what ``_yarl_url`` takes."""
    return str(httpx.URL(url))


@functools.lru_cache(maxsize=1024)
def _yarl_url(url: str) -> yarl.URL:
    """httpx's URL as it is (already encoded: yarl must not encode it again); parsed once
    for the streams to the same URL."""
    return yarl.URL(url, encoded=True)
