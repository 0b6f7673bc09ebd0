"""What a checkpoint costs a Consumer: the same stream of 200,000 events with ids, from the
same loopback server, handled by the same async handler (each event's fields read), without
a checkpoint and with SQLiteCheckpoint and RedisCheckpoint (a real redis-server started here).

Run: ``python -m pytest benches/test_bench_checkpoint.py --benchmark-only``. The overhead
(1 - events/s with / events/s without, best rounds of the same run) is printed at the end;
the target is < 5% at 100,000 events/s and more.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from fastsse import AsyncEventStream, Consumer, Event, _bench
from fastsse.checkpoint import Checkpoint, RedisCheckpoint, SQLiteCheckpoint
from fastsse.testing import Response, SSEServer

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from redis_server import RedisServer  # noqa: E402

EVENTS = 200_000
CORPUS = b"".join(
    b'id: %d\nevent: token\ndata: {"index": %d, "text": "a token of text"}\n\n' % (i, i)
    for i in range(1, EVENTS + 1)
)
GROUP = f"consumer, {EVENTS // 1000}k events with ids"
BEST: dict[str, float] = {}


@pytest.fixture(scope="module")
def server() -> Iterator[SSEServer]:
    with SSEServer(Response.stream_bytes(CORPUS, 16 * 1024)) as server:
        yield server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as redis_server:
        yield redis_server.url


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    base = BEST.get("no checkpoint")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if base is None or reporter is None:
        return
    reporter.write_line("")
    for name, seconds in BEST.items():
        reporter.write_line(
            f"{name:>16}: {EVENTS / seconds:>9,.0f} events/s, overhead {1 - base / seconds:+.1%}"
        )


async def consume(url: str, checkpoint: Checkpoint | None) -> int:
    handled = 0

    async def handle(event: Event) -> None:
        nonlocal handled
        if event.id and event.event and event.data:
            handled += 1

    async with AsyncEventStream(url, reconnect=False) as stream:
        consumer = Consumer(stream, handle, workers=4, checkpoint=checkpoint)
        await consumer.run()
    if checkpoint is not None:
        assert await checkpoint.load() == str(EVENTS)  # the last commit covers every event
        await checkpoint.aclose()
    return handled


CHECKPOINTS: dict[str, Callable[[Path, str], Checkpoint | None]] = {
    "no checkpoint": lambda directory, redis_url: None,
    "SQLiteCheckpoint": lambda directory, redis_url: SQLiteCheckpoint(directory / "c.db", "k"),
    "RedisCheckpoint": lambda directory, redis_url: RedisCheckpoint(redis_url, "k"),
}


@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_consumer_with_checkpoint(
    benchmark: Any,
    server: SSEServer,
    redis_url: str,
    tmp_path: Path,
    record: Callable[[_bench.Result], None],
    name: str,
) -> None:
    benchmark.group = GROUP
    counter = iter(range(1000))

    def run() -> int:
        # A fresh store each round, so that every round commits from nothing.
        directory = tmp_path / str(next(counter))
        directory.mkdir()
        return asyncio.run(consume(server.url, CHECKPOINTS[name](directory, redis_url)))

    handled = benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    assert handled == EVENTS
    if benchmark.stats is not None:
        BEST[name] = benchmark.stats.stats.min
        record(_bench.Result(GROUP, name, BEST[name], EVENTS, len(CORPUS)))
