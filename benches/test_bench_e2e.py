"""End to end: fastsse's AsyncEventStream against httpx-sse, from the same loopback server, on
LLM token events, with a per-event async handler on every side; and parsing with JSON decoding
per event.

Each reader runs on two clients: a default ``httpx.AsyncClient`` ("httpx") and
``fastsse.async_client()`` ("aiohttp": httpx on httpx-aiohttp's transport). httpx-sse, the
baseline, runs on the default client, as its users have it. Everything runs once on asyncio's
event loop and once on uvloop's. Two chunkings: 16 KiB HTTP chunks, and one HTTP chunk per event
(as LLM servers flush). "Parser loop" is the bare ``fastsse.Parser`` over ``aiter_bytes()``,
the least a stream can cost on that client ("Parser loop (aiter_raw)" reads the body raw, as
fastsse's stream does when it has no content coding); "bytes, no parsing" is the client reading
the same response, the ceiling. The contenders of a group take turns, round after round.

Run: ``python -m pytest benches/ --benchmark-only``. The server (fastsse.testing.SSEServer)
sends pre-framed HTTP chunks in large writes, so it costs next to nothing and the client is
what is measured.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Iterator
from typing import Any, Callable

import httpx
import pytest
import uvloop
from fastsse import Parser, _json, async_client
from fastsse._tools import bench, e2e
from fastsse._tools.corpus import llm_tokens
from fastsse.testing import Response, SSEServer

LLM = llm_tokens(4_000_000)
#: One HTTP chunk per event is ~20x more chunks: a smaller stream keeps rounds short.
LLM_SMALL = llm_tokens(1_000_000)


ROUTES = {
    "e2e llm, 16 KiB chunks": (LLM, "/chunks", Response.stream_bytes(LLM.data, 16 * 1024)),
    "e2e llm, chunk per event": (
        LLM_SMALL,
        "/per-event",
        Response.stream_chunks(LLM_SMALL.per_event()),
    ),
}

#: (reader, client) pairs, named as in the table, in the order of a round: the contenders that
#: the targets compare run next to each other (the stream event by event on plain httpx and the
#: bare loops, over aiter_bytes() and over aiter_raw(), which reads the body as the stream
#: does). httpx-sse runs on the default client only.
CONTENDERS: dict[str, tuple[e2e.StreamClient, str]] = {
    "Parser loop (aiter_raw), httpx": (e2e.parser_loop_raw, "httpx"),
    "fastsse, httpx": (e2e.fastsse_events, "httpx"),
    "Parser loop, httpx": (e2e.parser_loop, "httpx"),
    "fastsse batches, httpx": (e2e.fastsse_batches, "httpx"),
    "bytes, no parsing, httpx": (e2e.httpx_bytes, "httpx"),
    **({"httpx-sse": (e2e.httpx_sse, "httpx")} if bench.parse_httpx_sse is not None else {}),
    "fastsse, aiohttp": (e2e.fastsse_events, "aiohttp"),
    "Parser loop, aiohttp": (e2e.parser_loop, "aiohttp"),
    "fastsse batches, aiohttp": (e2e.fastsse_batches, "aiohttp"),
    "bytes, no parsing, aiohttp": (e2e.httpx_bytes, "aiohttp"),
}
UNCOUNTED = [name for name in CONTENDERS if name.startswith("bytes")]
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(scope="module", params=list(LOOPS))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    loop = LOOPS[request.param]()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def clients(loop: asyncio.AbstractEventLoop) -> Iterator[dict[str, httpx.AsyncClient]]:
    # One client of each kind for every contender and round, as an application has: its setup
    # (an SSL context costs ~60 ms) is not what is measured.
    async def make() -> dict[str, httpx.AsyncClient]:
        return {"httpx": httpx.AsyncClient(), "aiohttp": async_client()}

    clients = loop.run_until_complete(make())
    assert type(clients["aiohttp"]).__name__ == "AiohttpClient", "the dev extra installs it"
    yield clients
    for client in clients.values():
        loop.run_until_complete(client.aclose())


@pytest.fixture(scope="module")
def server() -> Iterator[SSEServer]:
    with SSEServer() as server:
        for _, path, response in ROUTES.values():
            server.route(path, response)
        yield server


@pytest.mark.parametrize("route", list(ROUTES))
def test_stream(
    take_turns: Callable[..., None],
    loop: asyncio.AbstractEventLoop,
    clients: dict[str, httpx.AsyncClient],
    server: SSEServer,
    route: str,
) -> None:
    """Every contender reads the stream once per round, in turns (a shared machine's load
    changes weigh on all of them alike); the summary has each one's best round."""
    corpus, path, _ = ROUTES[route]
    url = server.url_for(path)
    group = f"{route} (uvloop)" if isinstance(loop, uvloop.Loop) else route
    contenders = {
        name: functools.partial(reader, clients[transport], url)
        for name, (reader, transport) in CONTENDERS.items()
    }
    take_turns(group, corpus, contenders, uncounted=UNCOUNTED)


def fastsse_with_json(chunks: list[bytes]) -> int:
    parser = Parser()
    loads = _json.loads
    count = 0
    for chunk in chunks:
        for event in parser.feed(chunk):
            if event.data != "[DONE]":
                loads(event.data)
            count += 1
    return count


def httpx_sse_with_json(chunks: list[bytes]) -> int:
    assert bench.decode_httpx_sse is not None
    return bench.decode_httpx_sse(chunks, _decode_json)


def _decode_json(event: Any) -> None:
    if event.data != "[DONE]":
        json.loads(event.data)


JSON_PARSERS = {"fastsse": fastsse_with_json, "httpx-sse": httpx_sse_with_json}


@pytest.mark.parametrize("parser", list(JSON_PARSERS))
def test_parse_and_decode_json(
    benchmark: Any, record: Callable[[bench.Result], None], parser: str
) -> None:
    if parser == "httpx-sse" and bench.parse_httpx_sse is None:
        pytest.skip(bench.HTTPX_SSE_MISSING)
    chunks = LLM.chunks()
    benchmark.group = "llm + JSON"
    count = benchmark(JSON_PARSERS[parser], chunks)
    bench.check_count(parser, LLM, count)
    if benchmark.stats is not None:
        best = benchmark.stats.stats.min
        record(bench.Result("llm + JSON", parser, best, LLM.events, len(LLM.data)))
