"""Checkpoints: SQLiteCheckpoint, the Consumer's watermark and commits, resume, kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
import pytest
from fastsse import AsyncEventStream, Consumer, Event
from fastsse.consume.checkpoint import IDLE, Checkpoint, Committer, SQLiteCheckpoint, Watermark
from fastsse.testing import SSEServer
from support import checkpoint_consumer
from support.numbered_feed import numbered_feed
from support.streams import fast_retry

pytestmark = pytest.mark.anyio

TIMEOUT = 20.0


class MemoryCheckpoint(Checkpoint):
    """A checkpoint that records every commit together with what was handled at that moment."""

    def __init__(self, stored: str | None = None, handled: set[str] | None = None) -> None:
        self.stored = stored
        self.handled = handled if handled is not None else set()
        self.commits: list[tuple[str, frozenset[str]]] = []

    async def load(self) -> str | None:
        return self.stored

    async def commit(self, last_event_id: str) -> None:
        self.stored = last_event_id
        self.commits.append((last_event_id, frozenset(self.handled)))


def ev(i: int) -> Event:
    return Event(data=f"event {i}", id=str(i))


def ids(events: Sequence[Event]) -> list[int]:
    return [int(e.id) for e in events]


# -- SQLiteCheckpoint -------------------------------------------------------------------------


async def test_sqlite_checkpoint_stores_one_id_per_key_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.db"
    async with SQLiteCheckpoint(path, "a") as a, SQLiteCheckpoint(path, "b") as b:
        assert await a.load() is None
        await a.commit("41")
        await a.commit("42")
        await b.commit(" spaced id ")
    async with SQLiteCheckpoint(path, "a") as again, SQLiteCheckpoint(path, "b") as other:
        assert await again.load() == "42"
        assert await other.load() == " spaced id "
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_checkpoint_rejects_a_non_string_id(tmp_path: Path) -> None:
    checkpoint = SQLiteCheckpoint(tmp_path / "c.db", "k")
    with pytest.raises(TypeError, match="must be a str"):
        await checkpoint.commit(42)  # type: ignore[arg-type]
    await checkpoint.aclose()


def test_sqlite_checkpoint_survives_kill_mid_write(tmp_path: Path) -> None:
    """A process committing as fast as it can is killed: the file holds a completed commit."""
    path = tmp_path / "c.db"
    script = (
        "import anyio, sys\n"
        "from fastsse.consume.checkpoint import SQLiteCheckpoint\n"
        "async def main():\n"
        "    checkpoint = SQLiteCheckpoint(sys.argv[1], 'k')\n"
        "    for i in range(1, 10**9):\n"
        "        await checkpoint.commit(str(i) * 50)\n"
        "        if i == 200:\n"
        "            print('ready', flush=True)\n"
        "anyio.run(main)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(TIMEOUT)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = anyio.run(SQLiteCheckpoint(path, "k").load)
    assert stored is not None
    number = stored[: len(stored) // 50]
    assert stored == number * 50  # a whole value, never a torn one
    assert int(number) >= 200


# -- the watermark ----------------------------------------------------------------------------


def test_watermark_waits_for_every_earlier_event() -> None:
    """Two workers, as the Consumer drives them: events 3 and 4 finish before 1 and 2."""
    watermark = Watermark(workers=2)
    taken = 0

    def take(worker: int, *events: Event) -> None:
        nonlocal taken
        watermark.history.extend(events)
        watermark.busy[worker] = taken
        taken += len(events)

    take(0, ev(1))
    take(1, ev(2))
    assert watermark.event(taken) is None  # nothing settled
    watermark.busy[1] = IDLE  # 2 done, 1 still held
    assert watermark.event(taken) is None
    take(1, ev(3), ev(4))  # a batch (sync handler in a thread)
    watermark.busy[1] = IDLE
    assert watermark.event(taken) is None  # 2, 3 and 4 are done, but 1 is not
    watermark.busy[0] = IDLE
    assert watermark.event(taken) == ev(4)
    take(0, ev(5))
    take(1, ev(6))
    watermark.busy[1] = IDLE
    assert watermark.event(taken) == ev(4)  # 6 waits for 5
    watermark.busy[0] = IDLE
    assert watermark.event(taken) == ev(6)
    assert watermark.history == [ev(6)]  # what is below the watermark is let go


async def test_commits_are_batched_by_count() -> None:
    checkpoint = MemoryCheckpoint()
    current: list[Event] = []
    committer = Committer(
        checkpoint, lambda: current[-1] if current else None, every=10, interval=60
    )
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(committer.run)
        await anyio.wait_all_tasks_blocked()
        current.append(ev(9))
        committer.poke(9)
        await anyio.wait_all_tasks_blocked()
        assert checkpoint.commits == []  # nine taken: below the count
        current.append(ev(10))
        committer.poke(10)
        with anyio.fail_after(TIMEOUT):
            while not checkpoint.commits:
                await anyio.sleep(0.001)
        await committer.flush()  # unchanged: not committed again
        committer.close()
    assert [commit for commit, _ in checkpoint.commits] == ["10"]
    assert committer.commits == 1


async def test_commits_are_batched_by_time() -> None:
    checkpoint = MemoryCheckpoint()
    committer = Committer(checkpoint, lambda: ev(1), every=1000, interval=0.05)
    started = time.monotonic()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(committer.run)
        with anyio.fail_after(TIMEOUT):
            while not checkpoint.commits:
                await anyio.sleep(0.005)
        committer.close()
    assert time.monotonic() - started >= 0.05
    assert checkpoint.commits[0][0] == "1"


# -- the Consumer -----------------------------------------------------------------------------


async def test_consumer_never_commits_past_an_unhandled_event() -> None:
    """Event 3 is held until 2 is committed and 10 is handled: the commits stop at 2 meanwhile."""
    total = 30
    checkpoint = MemoryCheckpoint()
    tenth_handled = anyio.Event()
    two_committed = anyio.Event()
    commit = checkpoint.commit

    async def commit_and_tell(last_event_id: str) -> None:
        await commit(last_event_id)
        if last_event_id == "2":
            two_committed.set()

    checkpoint.commit = commit_and_tell  # type: ignore[method-assign]

    async def handle(event: Event) -> None:
        if event.id == "3":
            with anyio.fail_after(TIMEOUT):
                # The interval's commits reach 2 and no further while this event is held.
                await two_committed.wait()
                await tenth_handled.wait()
        checkpoint.handled.add(event.id)
        if event.id == "10":
            tenth_handled.set()

    with SSEServer(numbered_feed(total, per_write=5)) as server:
        async with AsyncEventStream(server.url, retry=fast_retry()) as stream:
            consumer = Consumer(
                stream, handle, workers=4, checkpoint=checkpoint, commit_interval=0.01
            )
            with anyio.fail_after(TIMEOUT):
                await consumer.run()
    assert consumer.stats.handled == total
    committed = [int(commit) for commit, _ in checkpoint.commits]
    assert committed == sorted(committed)
    assert committed[-1] == total
    assert 2 in committed
    for commit_id, handled in checkpoint.commits:
        assert {str(i) for i in range(1, int(commit_id) + 1)} <= handled


async def test_consumer_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    total = 20
    seen: list[str] = []

    async def handle(event: Event) -> None:
        seen.append(event.id)

    async with SQLiteCheckpoint(tmp_path / "c.db", "feed") as checkpoint:
        await checkpoint.commit("12")
        with SSEServer(numbered_feed(total)) as server:
            async with AsyncEventStream(server.url, retry=fast_retry()) as stream:
                with anyio.fail_after(TIMEOUT):
                    await Consumer(stream, handle, workers=1, checkpoint=checkpoint).run()
            assert server.requests[0].last_event_id == "12"
        assert seen == [str(i) for i in range(13, total + 1)]
        assert await checkpoint.load() == str(total)


async def test_an_explicit_last_event_id_wins_over_the_checkpoint() -> None:
    seen: list[str] = []

    async def handle(event: Event) -> None:
        seen.append(event.id)

    checkpoint = MemoryCheckpoint(stored="12")
    with SSEServer(numbered_feed(10)) as server:
        async with AsyncEventStream(server.url, last_event_id="7", retry=fast_retry()) as stream:
            with anyio.fail_after(TIMEOUT):
                await Consumer(stream, handle, workers=1, checkpoint=checkpoint).run()
        assert server.requests[0].last_event_id == "7"
    assert seen == ["8", "9", "10"]


async def test_a_cancelled_run_commits_only_what_it_handled() -> None:
    checkpoint = MemoryCheckpoint()
    held = anyio.Event()

    async def handle(event: Event) -> None:
        if event.id == "5":
            held.set()
            await anyio.sleep_forever()
        checkpoint.handled.add(event.id)

    with SSEServer(numbered_feed(50)) as server:
        async with AsyncEventStream(server.url, retry=fast_retry()) as stream:
            consumer = Consumer(stream, handle, workers=2, checkpoint=checkpoint)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(consumer.run)
                with anyio.fail_after(TIMEOUT):
                    await held.wait()
                    while consumer.stats.handled < 10:  # others pass 5 meanwhile
                        await anyio.sleep(0.001)
                consumer.stop(drain=False)
    assert consumer.stats.cancelled >= 1
    assert checkpoint.stored == "4"  # the final commit stops before the cancelled event


def test_consumer_rejects_a_checkpoint_it_cannot_resume() -> None:
    async def source() -> AsyncIterator[Event]:
        yield ev(1)

    async def handle(event: Event) -> None:
        return None

    with pytest.raises(TypeError, match="needs an AsyncEventStream"):
        Consumer(source(), handle, checkpoint=MemoryCheckpoint())
    with pytest.raises(TypeError, match="fastsse Checkpoint"):
        Consumer(AsyncEventStream("http://127.0.0.1:9/"), handle, checkpoint=object())  # type: ignore[arg-type]


def test_kill_9_skips_nothing_and_repeats_at_most_the_unsettled(tmp_path: Path) -> None:
    """A consumer process is killed mid-run and started again: every event is handled, the
    events handled twice are bounded by the queue, the workers and one commit batch, and the
    checkpoint never covered an event that was not handled before the kill."""
    total, per_write = 2000, 20
    database, log = tmp_path / "c.db", tmp_path / "handled.log"
    command = [sys.executable, checkpoint_consumer.__file__]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with SSEServer(numbered_feed(total, per_write=per_write, pause=0.01)) as server:
        args = [server.url, str(database), str(log)]
        first = subprocess.Popen([*command, *args], env=env)
        try:
            deadline = time.monotonic() + TIMEOUT
            while _lines(log) < total // 4:
                assert time.monotonic() < deadline, "the consumer handled too little"
                assert first.poll() is None, "the consumer ended before it was killed"
                time.sleep(0.005)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(TIMEOUT)
        before_kill = [int(line) for line in log.read_text().split()]
        stored = anyio.run(SQLiteCheckpoint(database, "feed").load)
        assert stored is not None, "nothing was committed before the kill"
        requests_before = len(server.requests)
        second = subprocess.run([*command, *args], env=env, timeout=TIMEOUT)
        assert second.returncode == 0
        assert server.requests[requests_before].last_event_id == stored
    handled = [int(line) for line in log.read_text().split()]
    assert set(range(1, int(stored) + 1)) <= set(before_kill)
    assert set(handled) == set(range(1, total + 1))
    duplicates = len(handled) - total
    bound = (
        checkpoint_consumer.QUEUE_SIZE
        + checkpoint_consumer.WORKERS
        + per_write
        + 2 * checkpoint_consumer.COMMIT_EVERY
    )
    assert 0 <= duplicates <= bound, f"{duplicates} events handled twice"
    print(f"killed after {len(before_kill)} events; {duplicates} handled twice")


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0
