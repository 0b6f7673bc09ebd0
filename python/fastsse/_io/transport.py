"""``fastsse.async_client()``: an ``httpx.AsyncClient`` on the fastest transport installed, with
timeouts made for event streams.

httpx's own transport (h11 and httpcore) costs more per HTTP chunk than parsing the chunk does,
so with LLM servers, which flush one chunk per event, no parser can be much faster than httpx
reads. The httpx-aiohttp transport reads with aiohttp's C HTTP parser and keeps httpx's API:
``pip install httpx-aiohttp`` and ``async_client()`` uses it.
"""

from __future__ import annotations

import functools
import logging
import ssl
import sys
import weakref
from collections.abc import Mapping
from typing import Any

import httpx

from fastsse.protocol import DEFAULT_READ_TIMEOUT

#: The connect (and write and pool) timeout of the client a stream makes for itself.
DEFAULT_CONNECT_TIMEOUT = 30.0

__all__ = [
    "DEFAULT_READ_TIMEOUT",
    "async_client",
    "fast_transport_installed",
    "on_trio",
    "sendable_directly",
    "shared_ssl_context",
    "warn_if_resending",
]

logger = logging.getLogger("fastsse")
#: The clients warn_if_resending() has warned about: once each.
_warned: weakref.WeakSet[Any] = weakref.WeakSet()


def async_client(**httpx_kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for event streams, on httpx-aiohttp's transport when it is
    installed (and the code runs on asyncio), else on httpx's own.

    Takes ``httpx.AsyncClient``'s keyword arguments. Unless ``timeout`` is given, a read may
    wait as long as a stream's default ``read_timeout`` (a quiet feed is not a dead one) and
    connecting may take ``connect_timeout``. Redirects are followed unless
    ``follow_redirects=False``, as by the client a stream makes for itself. On httpx-aiohttp's
    transport a request that fails is never sent a second time behind the caller's back
    (aiohttp re-sends a GET once when the server hangs up before answering), so a stream's
    backoff paces every attempt.
    """
    _stream_defaults(httpx_kwargs)
    if "transport" in httpx_kwargs or not fast_transport_installed() or on_trio():
        return httpx.AsyncClient(**httpx_kwargs)
    from fastsse._io.aiohttp import AiohttpClient

    return AiohttpClient(**httpx_kwargs)


#: The request options that ``fastsse._io.direct`` encodes as httpx does (through httpx).
_SENT_DIRECTLY = frozenset(("params", "json", "content"))


def sendable_directly(
    url: object, request_options: Mapping[str, Any], send_options: Mapping[str, Any]
) -> bool:
    """Whether a stream's request goes as httpx would send it on ``fastsse._io.direct``'s
    aiohttp path (when that is installed and the loop is asyncio's): no ``auth``
    (httpx's auth flows answer challenges), no form ``data``, ``files`` or ``extensions``,
    and no credentials in the URL (httpx turns them into an Authorization header)."""
    if "auth" in send_options or not request_options.keys() <= _SENT_DIRECTLY:
        return False
    return "@" not in str(url).partition("://")[2].partition("/")[0]


def fast_transport_installed() -> bool:
    """Whether httpx-aiohttp (``pip install httpx-aiohttp``) can be imported."""
    try:
        import httpx_aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


def warn_if_resending(client: Any, what: str) -> None:
    """Warns, once per client, when a caller's client is on httpx-aiohttp's transport as it
    comes (not ``async_client()``'s): that one re-sends a failed GET by itself, so each failed
    attempt of ``what`` (a stream) would reach the server twice, the second without a delay."""
    httpx_aiohttp = sys.modules.get("httpx_aiohttp")
    if httpx_aiohttp is None or client in _warned:
        return
    transports = [getattr(client, "_transport", None)]
    transports += getattr(client, "_mounts", {}).values()
    if any(isinstance(t, httpx_aiohttp.AiohttpTransport) for t in transports):
        _warned.add(client)
        logger.warning(
            "%s: the client is on httpx-aiohttp's own transport, which sends a GET a second "
            "time by itself when the server hangs up before answering, so each failed attempt "
            "would reach the server twice, the second without the backoff's delay; "
            "fastsse.async_client() makes the same client without that",
            what,
        )


def on_trio() -> bool:
    """Whether the caller runs on trio, where aiohttp (asyncio only) cannot."""
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


def sync_client(**httpx_kwargs: Any) -> httpx.Client:
    """The ``httpx.Client`` an ``EventStream`` makes for itself: the same defaults."""
    _stream_defaults(httpx_kwargs)
    return httpx.Client(**httpx_kwargs)


def _stream_defaults(httpx_kwargs: dict[str, Any]) -> None:
    """Stream timeouts, and one TLS context for every client made here: building one loads the
    CA bundle, which costs ~50 ms and ~900 KiB per client, and a process with a thousand
    streams that each own a client would pay it a thousand times."""
    httpx_kwargs.setdefault("timeout", _stream_timeout())
    # One default, whether the stream makes its client or the caller passes one of ours.
    httpx_kwargs.setdefault("follow_redirects", True)
    if not {"verify", "cert", "trust_env"} & httpx_kwargs.keys():
        httpx_kwargs["verify"] = shared_ssl_context()


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def _stream_timeout() -> httpx.Timeout:
    return httpx.Timeout(DEFAULT_CONNECT_TIMEOUT, read=DEFAULT_READ_TIMEOUT)
