from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastsse._io import pool as _pool
from fastsse._io import transport as _transport
from fastsse.testing import SSEServer
from support.redis_server import RedisServer

#: What the stream suite (tests/stream/test_stream_*.py) runs on: every test once per client library
#: and transport. A stream made without ``client=`` gets the variant's client, and so does a
#: test that builds one with ``_transport.async_client()`` / ``sync_client()``. (Without a
#: client, an async stream of the "direct" and "uvloop" variants sends through aiohttp itself:
#: ``fastsse._io.direct``; of the others, through the variant's httpx client.)
CLIENT_VARIANTS = (
    "httpx",  # httpx's own transport (httpcore)
    "httpx2",  # pydantic's fork of httpx: its own classes and exceptions
    "aiohttp",  # fastsse.async_client(): httpx on httpx-aiohttp's transport (async only)
    "direct",  # a stream's own client on asyncio: aiohttp's session itself (async only)
    "uvloop",  # the same ("direct", or async_client()'s) on uvloop's event loop (async only)
)
#: Variants that only exist for async streams.
ASYNC_ONLY = ("aiohttp", "direct", "uvloop")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.startswith("test_stream_"):
        metafunc.parametrize("http_client", CLIENT_VARIANTS, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A sync stream has no aiohttp or uvloop variant: those combinations are not tests."""
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        params = params.params if params is not None else {}
        sync_only = params.get("kind") == "sync" or (
            "kind" not in params and not asyncio.iscoroutinefunction(getattr(item, "obj", None))
        )
        (drop if sync_only and params.get("http_client") in ASYNC_ONLY else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def http_client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The client variant of a stream test (see CLIENT_VARIANTS); "default" elsewhere."""
    variant: str = getattr(request, "param", "default")
    if variant in ("httpx", "httpx2", "aiohttp"):
        monkeypatch.setattr(_pool, "DIRECT", False)
    if variant == "httpx":
        monkeypatch.setattr(_transport, "async_client", lambda **kw: httpx.AsyncClient(**kw))
    elif variant == "httpx2":
        import httpx2

        monkeypatch.setattr(_transport, "async_client", lambda **kw: httpx2.AsyncClient(**kw))
        monkeypatch.setattr(_transport, "sync_client", lambda **kw: httpx2.Client(**kw))
    elif variant in ASYNC_ONLY:
        assert _transport.fast_transport_installed(), "the dev extra installs httpx-aiohttp"
    if variant != "uvloop":
        yield variant
        return
    import uvloop

    # Every loop the test starts (anyio.run, the anyio plugin) is uvloop's.
    policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        yield variant
    finally:
        asyncio.set_event_loop_policy(policy)


@pytest.fixture
def anyio_backend(http_client: str) -> str | tuple[str, dict[str, Any]]:
    """Async tests (marked ``@pytest.mark.anyio``) run on asyncio, the loop SSEServer uses;
    on uvloop in the uvloop variant."""
    return ("asyncio", {"use_uvloop": True}) if http_client == "uvloop" else "asyncio"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server of the test's own, on a free port (fails if none is installed)."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def server() -> Iterator[SSEServer]:
    """A loopback SSEServer of the test's own, with nothing scripted yet."""
    with SSEServer() as server:
        yield server
