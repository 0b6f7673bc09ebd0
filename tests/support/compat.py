"""Helpers the httpx-sse drop-in tests share: httpx2 where it installs, an in-memory event-stream
response, and httpx-sse's README reconnect recipe as written."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

try:
    import httpx2

    HTTPX2: list[ModuleType] = [httpx2]
except ImportError:  # httpx2 needs Python >= 3.11; the httpx2 cases run wherever it installs
    HTTPX2 = []


def response(http: ModuleType, chunks: list[bytes]) -> Any:
    """A response of ``http`` (httpx or httpx2) whose body arrives in these chunks."""
    return http.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=iter(chunks),
        request=http.Request("GET", "http://127.0.0.1/feed"),
    )


def stamina_like_retry(*, on: type[BaseException]) -> Callable[[Any], Any]:
    """A stand-in for ``stamina.retry`` on a generator function: runs it again, at most 5
    times, when it raises ``on``."""

    def decorate(func: Callable[[], Iterator[Any]]) -> Callable[[], Iterator[Any]]:
        @functools.wraps(func)
        def wrapper() -> Iterator[Any]:
            for attempt in range(5):
                try:
                    yield from func()
                    return
                except on:
                    if attempt == 4:
                        raise

        return wrapper

    return decorate


def readme_iter_sse_retrying(
    httpx: ModuleType, connect_sse: Any, slept: list[float]
) -> Callable[[Any, str, str], Iterator[Any]]:
    """httpx-sse's README reconnect recipe on ``httpx`` (httpx or httpx2) and ``connect_sse``
    (any drop-in's), with the delay it would sleep before each attempt recorded in ``slept``."""
    retry = stamina_like_retry

    # -- the example, as written (time.sleep recorded instead of slept) --
    def iter_sse_retrying(client: Any, method: str, url: str) -> Iterator[Any]:
        last_event_id = ""
        reconnection_delay = 0.0

        @retry(on=httpx.ReadError)
        def _iter_sse() -> Iterator[Any]:
            nonlocal last_event_id, reconnection_delay

            slept.append(reconnection_delay)

            headers = {"Accept": "text/event-stream"}

            if last_event_id:
                headers["Last-Event-ID"] = last_event_id

            with connect_sse(client, method, url, headers=headers) as event_source:
                for sse in event_source.iter_sse():
                    last_event_id = sse.id

                    if sse.retry is not None:
                        reconnection_delay = sse.retry / 1000

                    yield sse

        return _iter_sse()  # type: ignore[no-any-return]

    return iter_sse_retrying
