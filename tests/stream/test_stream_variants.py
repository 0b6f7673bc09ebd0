"""The stream suite's variants (tests/conftest.py) run on what they name: a test that passes on
"uvloop" ran on uvloop, one on "httpx2" used an httpx2 client."""

from __future__ import annotations

import asyncio

import anyio
import httpx
import pytest
from fastsse import AsyncEventStream
from fastsse._io import transport as _transport
from fastsse._io.aiohttp import AiohttpClient
from fastsse._io.direct import DirectClient
from fastsse.testing import Response, SSEServer, event


def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


@pytest.mark.anyio
async def test_the_variant_runs_on_the_loop_and_client_it_names(http_client: str) -> None:
    import httpx2

    expected_loop = "uvloop" if http_client == "uvloop" else "asyncio"
    assert _loop_module() == expected_loop
    # The loops that tests start themselves (anyio.run, as stream_helpers.collect does):
    assert await anyio.to_thread.run_sync(anyio.run, _async_loop_module) == expected_loop
    expected_client = {
        "httpx": httpx.AsyncClient,
        "httpx2": httpx2.AsyncClient,
        "aiohttp": AiohttpClient,
        "direct": AiohttpClient,
        "uvloop": AiohttpClient,
    }[http_client]
    async with _transport.async_client() as client:
        assert type(client) is expected_client
    # A stream's own client: aiohttp's session itself where the variant says so.
    own_client = DirectClient if http_client in ("direct", "uvloop") else expected_client
    with SSEServer(Response(body=[event("a")]), Response(204)) as server:
        seen = []
        async with AsyncEventStream(server.url) as stream:
            async for e in stream:
                seen.append((e.data, type(stream._client)))
        assert seen == [("a", own_client)]


async def _async_loop_module() -> str:
    return _loop_module()
