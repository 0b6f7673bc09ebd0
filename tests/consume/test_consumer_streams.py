"""A Consumer of several streams: one queue and worker pool, read through fastsse.merge; each
stream resumes from, and commits to, a checkpoint of its own."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fastsse import AsyncEventStream, Consumer, Event, SQLiteCheckpoint
from fastsse.testing import Response, SSEServer, event

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0
NAMES = ("a", "b", "c")


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as server:
        yield server


def feed(server: SSEServer, name: str, first: int, count: int) -> None:
    """``count`` events ``{name}{i}`` with ids ``i`` from ``first`` on ``/{name}``; then 204."""
    server.route(
        f"/{name}",
        Response(body=[event(f"{name}{i}", id=str(i)) for i in range(first, first + count)]),
        Response(204),
    )


def streams(server: SSEServer) -> list[AsyncEventStream]:
    return [AsyncEventStream(server.url_for(f"/{name}")) for name in NAMES]


async def test_one_worker_pool_handles_every_streams_events(server: SSEServer) -> None:
    for name in NAMES:
        feed(server, name, 1, 50)
    seen: Counter[str] = Counter()

    async def handle(item: Event) -> None:
        seen[item.data[0]] += 1

    consumer = Consumer(streams(server), handle, workers=3, queue_size=16)
    with anyio.fail_after(TIMEOUT):
        await consumer.run()
    assert seen == dict.fromkeys(NAMES, 50)
    assert consumer.stats.handled == 150


async def test_each_stream_commits_and_resumes_under_its_own_key(
    server: SSEServer, tmp_path: Path
) -> None:
    database = tmp_path / "checkpoints.db"
    for name, count in zip(NAMES, (5, 7, 9)):
        feed(server, name, 1, count)
    first = streams(server)
    checkpoints = {
        stream: SQLiteCheckpoint(database, key=name) for stream, name in zip(first, NAMES)
    }
    handled: list[str] = []

    async def handle(item: Event) -> None:
        handled.append(item.data)

    with anyio.fail_after(TIMEOUT):
        await Consumer(first, handle, workers=2, checkpoint=checkpoints).run()
        stored = [await SQLiteCheckpoint(database, key=name).load() for name in NAMES]
    assert stored == ["5", "7", "9"]
    assert len(handled) == 21

    # A new run resumes each stream from its own stored ID.
    for name, count in zip(NAMES, (5, 7, 9)):
        feed(server, name, count + 1, 2)
    before = len(server.requests)
    second = streams(server)
    checkpoints = {
        stream: SQLiteCheckpoint(database, key=name) for stream, name in zip(second, NAMES)
    }
    with anyio.fail_after(TIMEOUT):
        await Consumer(second, handle, checkpoint=checkpoints).run()
        stored = [await SQLiteCheckpoint(database, key=name).load() for name in NAMES]
    assert stored == ["7", "9", "11"]
    resumed: dict[str, bytes | None] = {}
    for request in server.requests[before:]:  # each stream's first request of the new run
        resumed.setdefault(request.path, dict(request.headers).get("last-event-id"))
    assert resumed == {"/a": b"5", "/b": b"7", "/c": b"9"}


async def test_a_stream_commits_nothing_past_an_unsettled_event(
    server: SSEServer, tmp_path: Path
) -> None:
    """The handler holds event a2: stream a commits at most a1 until it is released. (The
    run's watermark is one for all streams, so b's commits may wait for a2 too: at least
    once, never skipped.)"""
    feed(server, "a", 1, 3)
    feed(server, "b", 1, 3)
    a, b = (AsyncEventStream(server.url_for(f"/{name}")) for name in "ab")
    database = tmp_path / "c.db"
    stores = {a: SQLiteCheckpoint(database, "a"), b: SQLiteCheckpoint(database, "b")}
    release = anyio.Event()
    held = anyio.Event()
    rest_handled = anyio.Event()
    count = 0

    async def handle(item: Event) -> None:
        nonlocal count
        if item.data == "a2":
            held.set()
            await release.wait()
            return
        count += 1
        if count == 5:
            rest_handled.set()

    consumer = Consumer([a, b], handle, workers=4, checkpoint=stores, commit_interval=0.01)
    async with anyio.create_task_group() as group:
        group.start_soon(consumer.run)
        with anyio.fail_after(TIMEOUT):
            await held.wait()
            await rest_handled.wait()
            for _ in range(5):  # several commit intervals go by
                await anyio.sleep(0.02)
                assert await stores[a].load() in (None, "1")
        release.set()
    assert await stores[a].load() == "3"
    assert await stores[b].load() == "3"


def test_several_streams_need_a_checkpoint_each_and_overflow_block(tmp_path: Path) -> None:
    a, b = AsyncEventStream("http://127.0.0.1:1/a"), AsyncEventStream("http://127.0.0.1:1/b")
    store = SQLiteCheckpoint(tmp_path / "c.db", "k")

    async def handle(item: Event) -> None:
        pass

    with pytest.raises(TypeError, match="mapping of each stream"):
        Consumer([a, b], handle, checkpoint=store)
    with pytest.raises(ValueError, match="each of the streams"):
        Consumer([a, b], handle, checkpoint={a: store})
    # One store for two streams: each commit would overwrite the other's position.
    with pytest.raises(ValueError, match="a Checkpoint of its own"):
        Consumer([a, b], handle, checkpoint={a: store, b: store})
    with pytest.raises(ValueError, match="overflow='block'"):
        Consumer(
            [a, b],
            handle,
            checkpoint={a: store, b: SQLiteCheckpoint(tmp_path / "c.db", "j")},
            overflow="drop_oldest",
        )
    with pytest.raises(ValueError, match="twice"):
        Consumer([a, a], handle)
