"""What a checkpoint costs a Consumer: the same stream of 200,000 events with ids, from a feed
server in its own process (benches/feed_server.py, so that this process's CPU time is the
consumer's alone), handled by the same async handler (each event's fields read, its data
decoded as JSON), without a checkpoint and with SQLiteCheckpoint and RedisCheckpoint (a real
redis-server started here). Default commit batching (10,000 events or 1 s).

Two measures, each round running the three in a rotating order so that a noisy neighbour
slows them alike, the best round of each counting:

- at full speed: events/s, and the overhead 1 - (events/s with) / (events/s without);
- at 100,000 events/s (the feed paced): the consumer's CPU time, with over without - 1.

Run: ``python -m pytest benches/test_bench_checkpoint.py --benchmark-only -s``; the target
is an overhead < 5% at 100,000 events/s.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from fastsse import AsyncEventStream, Checkpoint, Consumer, Event, RedisCheckpoint, SQLiteCheckpoint
from fastsse._tools import bench

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from feed_server import serving
from support.redis_server import RedisServer

EVENTS = 200_000
PACE = 100_000
GROUP = f"consumer, {EVENTS // 1000}k events with ids"
CHECKPOINTS: dict[str, Callable[[Path, str], Checkpoint | None]] = {
    "no checkpoint": lambda directory, redis_url: None,
    "SQLiteCheckpoint": lambda directory, redis_url: SQLiteCheckpoint(directory / "c.db", "k"),
    "RedisCheckpoint": lambda directory, redis_url: RedisCheckpoint(redis_url, str(directory)),
}


@pytest.fixture(scope="module")
def fast_feed() -> Iterator[str]:
    yield from serving("events", str(EVENTS), "0")


@pytest.fixture(scope="module")
def paced_feed() -> Iterator[str]:
    yield from serving("events", str(EVENTS), str(PACE))


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as redis_server:
        yield redis_server.url


async def consume(url: str, checkpoint: Checkpoint | None) -> int:
    handled = 0

    async def handle(event: Event) -> None:
        nonlocal handled
        if event.id and event.event and event.json()["text"]:
            handled += 1

    async with AsyncEventStream(url, reconnect=False) as stream:
        consumer = Consumer(stream, handle, workers=4, checkpoint=checkpoint)
        await consumer.run()
    return handled


async def timed(url: str, checkpoint: Checkpoint | None) -> tuple[float, float]:
    """The wall and CPU time of a consumer's run; opening the store and closing it are not
    timed (they happen once per process, not per event)."""
    if checkpoint is not None:
        assert await checkpoint.load() is None
    started, started_cpu = time.perf_counter(), time.process_time()
    assert await consume(url, checkpoint) == EVENTS
    wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    if checkpoint is not None:
        assert await checkpoint.load() == str(EVENTS)  # the last commit covers every event
        await checkpoint.aclose()
    return wall, cpu


class Rounds:
    """Runs the contenders in a rotating order; keeps the best wall and CPU time of each."""

    def __init__(self, url: str, redis_url: str, directory: Path) -> None:
        self.url, self.redis_url, self.directory = url, redis_url, directory
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.count = 0

    def __call__(self) -> None:
        names = list(CHECKPOINTS)
        shift = self.count % len(names)
        for name in names[shift:] + names[:shift]:
            self.count += 1
            directory = self.directory / str(self.count)
            directory.mkdir()  # a fresh store each round: every round commits from nothing
            checkpoint = CHECKPOINTS[name](directory, self.redis_url)
            wall, cpu = asyncio.run(timed(self.url, checkpoint))
            self.wall[name] = min(self.wall.get(name, wall), wall)
            self.cpu[name] = min(self.cpu.get(name, cpu), cpu)


def report(request: pytest.FixtureRequest, lines: list[str]) -> None:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in ["", *lines]:
            reporter.write_line(line)


def test_checkpoint_overhead_at_full_speed(
    benchmark: Any,
    fast_feed: str,
    redis_url: str,
    tmp_path: Path,
    record: Callable[[bench.Result], None],
    request: pytest.FixtureRequest,
) -> None:
    benchmark.group = GROUP
    rounds = Rounds(fast_feed, redis_url, tmp_path)
    benchmark.pedantic(rounds, rounds=7, warmup_rounds=1)
    base = rounds.wall["no checkpoint"]
    lines = ["checkpoint overhead at full speed (best round of each):"]
    for name, wall in rounds.wall.items():
        record(bench.Result(GROUP, name, wall, EVENTS, 0))
        lines.append(
            f"{name:>18}: {EVENTS / wall:>9,.0f} events/s, overhead {1 - base / wall:+.1%}"
        )
    report(request, lines)


def test_checkpoint_overhead_at_100k_events_per_second(
    benchmark: Any,
    paced_feed: str,
    redis_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    benchmark.group = f"{GROUP}, paced at {PACE:,}/s"
    rounds = Rounds(paced_feed, redis_url, tmp_path)
    benchmark.pedantic(rounds, rounds=5, warmup_rounds=0)
    base = rounds.cpu["no checkpoint"]
    lines = [f"checkpoint overhead at {PACE:,} events/s (consumer CPU time, best round of each):"]
    for name, cpu in rounds.cpu.items():
        rate = EVENTS / rounds.wall[name]
        lines.append(
            f"{name:>18}: {rate:>9,.0f} events/s, CPU {cpu:.2f} s, overhead {cpu / base - 1:+.1%}"
        )
    report(request, lines)
