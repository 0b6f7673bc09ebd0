"""The clients of the streams made without ``client=``: shared, so that thousands of streams in
one process cost what one connection each costs, not a client each.

A stream made without a client borrows one here when it first connects and gives it back when
it ends; the client is closed when the last stream that borrowed it gives it back. Clients are
kept apart by what they are made with (the factory, its options) and where they can be used:

- async clients by event loop (an ``httpx.AsyncClient``'s connections belong to the loop that
  opened them); never shared between two loops, even of the same thread one after the other;
- sync clients by process: ``httpx.Client`` is safe to use from several threads (its
  connection pool takes a lock), so the streams of every thread share, as threads that each
  run an ``EventStream`` are the sync way to hold many streams. A forked child makes its own.

Each client carries at most ``STREAMS_PER_CLIENT`` streams: httpcore's pool looks at each of
its connections for every request and every response, so its cost per request grows with the
streams on the client (O(n^2) to open n on one client). Measured with
benches/test_bench_many_streams.py's opening of 1,000 idle streams (see ``STREAMS_PER_CLIENT``).

Pooled clients keep no cookies a response sets: one stream's session cookie must never reach
another stream's request. (Each stream keeps the cookies of its own responses: see
``StreamBase._keep_cookies``.)
"""

from __future__ import annotations

import functools
import http.cookiejar
import os
import sys
import threading
import urllib.request
from collections.abc import Hashable
from typing import Any, Callable

from fastsse._io import transport as _transport

__all__ = ["STREAMS_PER_CLIENT", "acquire_async", "acquire_sync", "release_async", "release_sync"]

#: Streams on one pooled client at most (and its connection limit). Measured opening 1,000
#: idle streams (benches/many_client.py, CPU time of the client process): on httpx's own
#: transport 1.71 s at 25 per client, 1.63-1.66 s at 100, 1.68 s at 250, 2.7-3.0 s at 1,000
#: (its per-request pool scan is linear in the connections); on aiohttp's 0.9-1.0 s at 25-100
#: and 1.2-1.4 s at 1,000. Memory per stream is the same at every size.
STREAMS_PER_CLIENT = 100
#: Whether streams made without a client on asyncio send through aiohttp's session itself
#: (``fastsse._io.direct``) when the aiohttp extra is installed; off, they share
#: ``async_client()``'s clients (httpx on httpx-aiohttp's transport): the stream suite runs both.
DIRECT = True


class _Shared:
    """One pooled client and the number of streams holding it."""

    __slots__ = ("client", "key", "users")

    def __init__(self, key: Hashable, client: Any) -> None:
        self.key = key
        self.client = client
        self.users = 0


_lock = threading.Lock()
#: Clients with room for another stream, and full ones, by key.
_pool: dict[Hashable, list[_Shared]] = {}
#: Every pooled client lent out, by id (a client's own hash may be anything).
_lent: dict[int, _Shared] = {}


def _no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that stores nothing, so that a response's Set-Cookie stays with it."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def _acquire(key: Hashable, make: Callable[[], Any]) -> Any:
    with _lock:
        # Newest first: the client made last is the one with room, but for a stream that
        # left an older one (a scan from the oldest would pass every full client first).
        entry = None
        for candidate in reversed(_pool.get(key, ())):
            if candidate.users < STREAMS_PER_CLIENT:
                entry = candidate
                break
        if entry is None:
            entry = _Shared(key, make())
            _pool.setdefault(key, []).append(entry)
            _lent[id(entry.client)] = entry
        entry.users += 1
        return entry.client


def _release(client: Any) -> Any | None:
    """Gives ``client`` back; returns it when it must be closed now (its last user left)."""
    with _lock:
        entry = _lent.get(id(client))
        if entry is None or entry.client is not client:
            return client  # Not pooled (made before the pool, or by a test): the stream's own.
        entry.users -= 1
        if entry.users > 0:
            return None
        del _lent[id(client)]
        clients = _pool[entry.key]
        clients.remove(entry)
        if not clients:
            del _pool[entry.key]
        return client


def _options_key(options: dict[str, Any]) -> Hashable:
    items = tuple(options.items())
    try:
        return _items_key(items)
    except TypeError:  # A value that cannot be hashed: its repr tells it apart.
        return _repr_key(items)


@functools.lru_cache(maxsize=64)
def _items_key(items: tuple[tuple[str, Any], ...]) -> Hashable:
    """The key of options that can be hashed: once for all the streams made with the same ones
    (a stream's are a few constants, so thousands of streams share a handful)."""
    return _repr_key(items)


def _repr_key(items: tuple[tuple[str, Any], ...]) -> Hashable:
    return tuple(sorted((name, repr(value)) for name, value in items))


def _loop_key() -> object:
    """The running event loop (asyncio's, or trio's token)."""
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            return trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
    import asyncio

    return asyncio.get_running_loop()


def acquire_async(options: dict[str, Any]) -> Any:
    """A shared ``async_client(**options)`` for a stream of the running event loop; with
    ``direct=True`` among the options, aiohttp's session itself (``fastsse._io.direct``) when
    the aiohttp extra is installed and the loop is asyncio's."""
    direct = options.get("direct", False) and DIRECT
    direct = direct and _transport.fast_transport_installed() and not _transport.on_trio()
    factory = _transport.async_client
    key = ("async", _loop_key(), factory, direct, _options_key(options))
    return _acquire(key, lambda: _new_async_client(factory, direct, options))


def _new_async_client(factory: Callable[..., Any], direct: bool, options: dict[str, Any]) -> Any:
    options = _pooled({name: value for name, value in options.items() if name != "direct"})
    # A proxy from the environment (HTTPS_PROXY...) is httpx's to honour, as it would for the
    # stream's own client. Read when a client is made (as httpx reads it): it costs ~100 µs.
    if direct and not urllib.request.getproxies():
        from fastsse._io.direct import DirectClient

        return DirectClient(**options)
    return factory(**options)


async def release_async(client: Any) -> None:
    """Gives back what ``acquire_async`` lent; closes it when no other stream holds it."""
    to_close = _release(client)
    if to_close is not None:
        await to_close.aclose()


def acquire_sync(options: dict[str, Any]) -> Any:
    """A shared ``sync_client(**options)`` for a stream of this process (any thread)."""
    factory = _transport.sync_client
    key = ("sync", os.getpid(), factory, _options_key(options))
    return _acquire(key, lambda: factory(**_pooled(options)))


def release_sync(client: Any) -> None:
    """Gives back what ``acquire_sync`` lent; closes it when no other stream holds it."""
    to_close = _release(client)
    if to_close is not None:
        to_close.close()


def _pooled(options: dict[str, Any]) -> dict[str, Any]:
    import httpx

    # Room for every stream it carries (httpx's default is 100 connections, whatever the
    # number of streams), and no cookie jar shared between them.
    return {
        **options,
        "limits": httpx.Limits(
            max_connections=STREAMS_PER_CLIENT, max_keepalive_connections=STREAMS_PER_CLIENT
        ),
        "cookies": _no_cookies(),
    }


def lent() -> int:
    """How many pooled clients are lent out (for tests)."""
    with _lock:
        return len(_lent)
