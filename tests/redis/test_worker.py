"""RedisStreamConsumer against a real redis-server: no duplicates among live workers, a lost
group created again, poison entries dead-lettered, handler timeouts, idle consumers
forgotten, entries trimmed before the group read them counted, and the stats.

Every wait polls Redis, a log or the worker's stats for the state it needs, with a deadline.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Callable

import anyio
import pytest
import redis
from fastsse import Event
from fastsse.redis import HandlerTimeoutError, RedisStreamConsumer, RedisWorkerStats
from support import poison_worker
from support.redis_checks import ENV, KEY, TIMEOUT, HeldHandler, add_entries, await_until
from support.redis_server import RedisServer


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    yield client
    client.close()


def pending(client: redis.Redis, group: str = "g") -> int:
    count: int = client.xpending(KEY, group)["pending"]
    return count


async def running(
    worker: RedisStreamConsumer, until: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Run ``worker`` until ``until()`` returns, then stop it and wait for run() to end."""
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(worker.run)
        if until is not None:
            await until()
        worker.stop()


# -- 1. no duplicates among live workers ------------------------------------------------------


@pytest.mark.anyio
async def test_live_workers_never_handle_an_entry_twice_however_slow_the_handlers(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    # The scenario, scaled down: a worker holds entries read ahead (queue_size) and
    # handlers slower than claim_idle, while a live idle worker claims every claim_idle / 3.
    total, claim_idle, slow = 12, 0.5, 0.6
    assert slow > claim_idle
    add_entries(client, range(1, total + 1))
    handled: Counter[str] = Counter()

    async def handle_slowly(event: Event) -> None:
        await anyio.sleep(slow)  # the work: longer than claim_idle
        handled[event.id] += 1

    async def handle(event: Event) -> None:
        handled[event.id] += 1

    a = RedisStreamConsumer(
        handle_slowly, redis=redis_server.url, stream=KEY, group="g", consumer="a",
        workers=2, queue_size=4, claim_idle=claim_idle,
    )  # fmt: skip
    b = RedisStreamConsumer(
        handle, redis=redis_server.url, stream=KEY, group="g", consumer="b",
        claim_idle=claim_idle,
    )  # fmt: skip
    started = time.monotonic()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(a.run)
            # a holds 6 entries (2 in its handlers, 4 read ahead) before b starts.
            await await_until(lambda: a.stats.received == 6, "a to hold 6 entries")
            tasks.start_soon(b.run)
            await await_until(
                lambda: a.stats.acknowledged + b.stats.acknowledged >= total, "every ack"
            )
            a.stop()
            b.stop()
    elapsed = time.monotonic() - started
    duplicates = sum(count - 1 for count in handled.values())
    print(f"live workers: {duplicates} of {total} entries handled twice, in {elapsed:.2f} s")
    assert sorted(handled, key=int) == [str(i) for i in range(1, total + 1)]
    assert duplicates == 0
    assert a.stats.handled == 6  # b took none of what a held
    assert (a.stats.claimed, b.stats.claimed) == (0, 0)
    assert pending(client) == 0


@pytest.mark.anyio
async def test_entries_claimed_from_a_stalled_worker_are_not_taken_back(
    redis_server: RedisServer, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fastsse.redis")
    add_entries(client, range(1, 3))
    release = anyio.Event()

    async def handle(event: Event) -> None:
        await release.wait()

    worker = RedisStreamConsumer(
        handle, redis=redis_server.url, stream=KEY, group="g", consumer="a", claim_idle=0.3
    )

    def owners() -> dict[bytes, bytes]:
        return {row["message_id"]: row["consumer"] for row in client.xpending_range(
            KEY, "g", "-", "+", 10)}  # fmt: skip

    async def steal() -> None:
        await await_until(lambda: worker.stats.in_flight == 2, "a to hold 1 and 2")
        first = next(iter(owners()))
        # What a worker that took a stalled one's entry after claim_idle does.
        client.xclaim(KEY, "g", "thief", 0, [first], justid=True)
        await await_until(
            lambda: any("claimed by another consumer" in r.getMessage() for r in caplog.records),
            "a to see it",
        )
        assert list(owners().values()) == [b"thief", b"a"]  # not taken back
        release.set()

    with anyio.fail_after(TIMEOUT):
        await running(worker, steal)
    assert pending(client) == 0  # a acknowledged both once handled


# -- 2, 3. a lost group; Redis errors' messages -----------------------------------------------


def restart_empty(server: RedisServer) -> None:
    """Redis restarted without persistence: everything it held is gone."""
    server.kill()
    shutil.rmtree(server.directory / "appendonlydir", ignore_errors=True)
    (server.directory / "dump.rdb").unlink(missing_ok=True)
    server.start()


@pytest.mark.anyio
async def test_a_lost_group_is_created_again_and_its_entries_handled(
    redis_server: RedisServer, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fastsse.redis")
    add_entries(client, range(1, 4))
    seen: list[str] = []

    async def handle(event: Event) -> None:
        seen.append(event.id)

    worker = RedisStreamConsumer(
        handle, redis=redis_server.url, stream=KEY, group="g", consumer="c1", claim_idle=0.3
    )

    async def lose_the_group() -> None:
        await await_until(lambda: worker.stats.acknowledged == 3, "1-3 handled")
        await anyio.to_thread.run_sync(restart_empty, redis_server)
        restarted = time.monotonic()
        fresh = redis_server.client()
        assert fresh.xlen(KEY) == 0  # nothing survived (the worker may have made it anew)
        await anyio.to_thread.run_sync(add_entries, fresh, range(4, 7))
        await await_until(lambda: worker.stats.acknowledged == 6, "4-6 handled")
        print(f"NOGROUP recovery: 4-6 handled {time.monotonic() - restarted:.2f} s after restart")
        fresh.close()

    with anyio.fail_after(TIMEOUT):
        await running(worker, lose_the_group)
    assert seen == ["1", "2", "3", "4", "5", "6"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    lost = [message for message in warnings if "is gone" in message]
    assert len(lost) == 1
    # The server's own words (not redis-py's repr), then what was done.
    assert lost[0].startswith("Redis said NOGROUP No such key 'feed' or consumer group 'g'")
    assert "created it again from the stream's first entry (0)" in lost[0]
    assert not any("ResponseError" in message for message in warnings)
    assert pending(client) == 0


@pytest.mark.anyio
async def test_acknowledged_counts_what_redis_acknowledged_when_the_group_was_lost_meanwhile(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    # The group is lost while entry 1 is being handled: its XACK then acknowledges nothing
    # (Redis answers 0, no error), and the entry comes again from the group made anew.
    add_entries(client, range(1, 2))
    seen: list[str] = []

    async def handle(event: Event) -> None:
        seen.append(event.id)
        if len(seen) == 1:
            await anyio.to_thread.run_sync(client.xgroup_destroy, KEY, "g")

    worker = RedisStreamConsumer(
        handle, redis=redis_server.url, stream=KEY, group="g", consumer="c1", claim_idle=0.3
    )

    async def handled_twice() -> None:
        await await_until(lambda: len(seen) == 2 and pending(client) == 0, "1 handled again")

    with anyio.fail_after(TIMEOUT):
        await running(worker, handled_twice)
    assert seen == ["1", "1"]
    assert worker.stats.handled == 2
    assert worker.stats.acknowledged == 1


@pytest.mark.anyio
async def test_redis_errors_are_logged_with_the_servers_message(
    redis_server: RedisServer, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fastsse.redis")
    worker = RedisStreamConsumer(
        lambda event: None, redis=redis_server.url, stream=KEY, group="g", consumer="c1"
    )

    def said(text: str) -> bool:
        return any(text in record.getMessage() for record in caplog.records)

    async def break_the_stream() -> None:
        await await_until(lambda: client.exists(KEY), "the group's stream")
        client.delete(KEY)
        client.set(KEY, "not a stream")
        await await_until(lambda: said("WRONGTYPE"), "the WRONGTYPE warning")

    with anyio.fail_after(TIMEOUT):
        await running(worker, break_the_stream)
    message = next(r.getMessage() for r in caplog.records if "WRONGTYPE" in r.getMessage())
    assert message.startswith(
        "Redis failed (WRONGTYPE Operation against a key holding the wrong kind of value); "
        "reading again in"
    )
    assert not said("ResponseError")


# -- 4. poison entries, handler timeouts, idle consumers --------------------------------------


def test_an_entry_that_kills_its_worker_is_dead_lettered_and_the_rest_handled(
    redis_server: RedisServer, client: redis.Redis, tmp_path: Path
) -> None:
    total, poison, most, claim_idle = 20, 7, 2, 0.3
    add_entries(client, range(1, total + 1))
    log = tmp_path / "workers.log"

    def lines(word: str) -> list[int]:
        text = log.read_text() if log.exists() else ""
        return [int(line.split()[1]) for line in text.splitlines() if line.startswith(word)]

    # Workers that die on entry 7, one after another: the first with 4 entries read ahead
    # (8-11, never started), the next claiming 7 (and only 7: one handler).
    for attempt, (workers, read_ahead) in enumerate([(1, 4), (1, 0)], 1):
        args = [redis_server.url, KEY, f"k{attempt}", str(log), str(poison), str(most)]
        process = subprocess.Popen(
            [sys.executable, poison_worker.__file__, *args, str(claim_idle), str(workers),
             str(read_ahead)],
            env=ENV,
        )  # fmt: skip
        try:
            assert process.wait(TIMEOUT) == 3  # died in the handler of 7
        finally:
            process.kill()
        assert lines("start").count(poison) == attempt
        waiting = [int(row["times_delivered"]) for row in client.xpending_range(
            KEY, "workers", "-", "+", 100)]  # fmt: skip
        # 7, and the entries read ahead with it that no handler started: delivered once.
        assert waiting == [attempt] + [1] * (len(waiting) - 1)
        assert len(waiting) > 1
    assert poison not in lines("done")

    # A healthy worker: 7 was delivered max_deliveries times, so it is dead-lettered; every
    # other entry is handled, those read or claimed with 7 included.
    done: list[int] = []

    async def handle(event: Event) -> None:
        done.append(int(event.id))

    worker = RedisStreamConsumer(
        handle, redis=redis_server.url, stream=KEY, group="workers", consumer="healthy",
        claim_idle=claim_idle, max_deliveries=most,
    )  # fmt: skip

    async def all_settled() -> None:
        await await_until(
            lambda: (
                set(lines("done")) | set(done) == set(range(1, total + 1)) - {poison}
                and worker.stats.dead_lettered == 1
                and pending(client, "workers") == 0
            ),
            "every entry handled or dead-lettered",
        )

    anyio.run(running, worker, all_settled)
    assert poison not in done
    assert set(range(poison + 1, total + 1)) <= set(lines("done")) | set(done)
    dead = client.xrange(f"{KEY}:dead")
    assert len(dead) == 1
    source = client.xrange(KEY, "-", "+")[poison - 1]
    assert dead[0][1] == {
        **source[1],
        b"source-id": source[0],
        b"deliveries": str(most).encode(),
    }
    assert worker.stats.dead_lettered == 1


@pytest.mark.anyio
async def test_a_hung_handler_times_out_is_redelivered_then_dead_lettered(
    redis_server: RedisServer, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fastsse.redis")
    add_entries(client, range(1, 6))
    failures: list[tuple[str, BaseException]] = []
    done: list[str] = []

    async def handle(event: Event) -> None:
        if event.id == "2":
            await anyio.sleep_forever()
        done.append(event.id)

    worker = RedisStreamConsumer(
        handle, redis=redis_server.url, stream=KEY, group="g", consumer="c1", workers=2,
        claim_idle=0.3, handler_timeout=0.2, max_deliveries=2,
        dead_letter="poison", on_error=lambda event, error: failures.append((event.id, error)),
    )  # fmt: skip

    async def buried() -> None:
        await await_until(lambda: worker.stats.dead_lettered == 1, "2 to be dead-lettered")
        await await_until(lambda: pending(client) == 0, "every ack")

    with anyio.fail_after(TIMEOUT):
        await running(worker, buried)
    assert sorted(done) == ["1", "3", "4", "5"]
    assert [entry for entry, _ in failures] == ["2", "2"]
    assert all(isinstance(error, HandlerTimeoutError) for _, error in failures)
    assert "handler_timeout=0.2" in str(failures[0][1])
    assert (worker.stats.timed_out, worker.stats.failed, worker.stats.claimed) == (2, 2, 1)
    assert worker.stats.acknowledged == 4  # the timed-out deliveries were not acknowledged
    dead = client.xrange("poison")
    assert [(fields[b"id"], fields[b"deliveries"]) for _, fields in dead] == [(b"2", b"2")]
    assert any("moved to the dead-letter stream 'poison'" in r.getMessage() for r in caplog.records)


def test_handler_timeout_needs_an_async_handler() -> None:
    with pytest.raises(TypeError, match="async def handler"):
        RedisStreamConsumer(
            lambda event: None, redis="redis://127.0.0.1:9/0", stream=KEY, group="g",
            consumer="c", handler_timeout=1.0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="max_deliveries"):
        RedisStreamConsumer(
            lambda event: None, redis="redis://127.0.0.1:9/0", stream=KEY, group="g",
            consumer="c", max_deliveries=0,
        )  # fmt: skip


def consumers(client: redis.Redis) -> dict[str, int]:
    return {c["name"].decode(): c["pending"] for c in client.xinfo_consumers(KEY, "g")}


@pytest.mark.anyio
async def test_consumers_idle_with_nothing_pending_are_removed_from_the_group(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    client.xgroup_create(KEY, "g", id="0", mkstream=True)
    add_entries(client, range(1, 3))
    client.xgroup_createconsumer(KEY, "g", "gone")
    client.xreadgroup("g", "busy", {KEY: ">"}, count=1)  # busy holds entry 1
    assert consumers(client) == {"gone": 0, "busy": 1}
    worker = RedisStreamConsumer(
        lambda event: None, redis=redis_server.url, stream=KEY, group="g", consumer="w",
        claim_idle=60.0, forget_idle_consumers_after=0.2,
    )  # fmt: skip

    async def forgotten() -> None:
        await await_until(lambda: "gone" not in consumers(client), "gone to be removed")

    with anyio.fail_after(TIMEOUT):
        await running(worker, forgotten)
    assert consumers(client)["busy"] == 1  # it has an entry pending: kept
    assert worker.stats.acknowledged == 1  # entry 2


# -- 5. entries trimmed before the group read them --------------------------------------------


@pytest.mark.anyio
async def test_entries_trimmed_before_the_group_read_them_are_counted_and_reported(
    redis_server: RedisServer, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fastsse.redis")
    add_entries(client, range(1, 3))  # trimmed before the group existed: not its miss
    seen: list[str] = []

    async def handle(event: Event) -> None:
        seen.append(event.id)

    def make() -> RedisStreamConsumer:
        return RedisStreamConsumer(
            handle, redis=redis_server.url, stream=KEY, group="g", consumer="c1"
        )

    first = make()
    with anyio.fail_after(TIMEOUT):
        await running(first, lambda: await_until(lambda: first.stats.acknowledged == 2, "1-2"))
    assert first.stats.missed == 0
    add_entries(client, range(3, 13))
    client.xtrim(KEY, maxlen=4, approximate=False)  # 3-8 gone unread
    second = make()
    with anyio.fail_after(TIMEOUT):
        await running(
            second,
            lambda: await_until(
                lambda: second.stats.acknowledged == 4 and second.stats.missed == 6, "9-12"
            ),
        )
    assert seen == ["1", "2", "9", "10", "11", "12"]
    assert second.stats.missed == 6
    warning = next(r.getMessage() for r in caplog.records if "trimmed" in r.getMessage())
    assert warning.startswith("6 entries of 'feed' were trimmed before the group 'g' read them")


@pytest.mark.anyio
async def test_entries_missed_behind_the_groups_position_are_told_from_its_backlog(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    client.xgroup_create(KEY, "g", id="0", mkstream=True, entries_read=0)
    add_entries(client, range(1, 13))
    client.xreadgroup("g", "x", {KEY: ">"}, count=2)  # 1-2 read
    client.xtrim(KEY, maxlen=4, approximate=False)  # 3-8 gone unread
    client.xreadgroup("g", "x", {KEY: ">"}, count=1)  # 9 read: 10-12 are the backlog
    assert client.xinfo_groups(KEY)[0]["lag"] == 9  # 6 missed + 3 waiting
    worker = RedisStreamConsumer(
        lambda event: None, redis=redis_server.url, stream=KEY, group="g", consumer="c1"
    )
    try:
        await worker._count_missed()
    finally:
        await worker._client.aclose()
    assert worker.stats.missed == 6


@pytest.mark.anyio
async def test_a_group_whose_lag_redis_cannot_tell_reports_nothing_missed(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    client.xgroup_create(KEY, "g", id="0", mkstream=True, entries_read=0)
    add_entries(client, range(1, 6))
    client.xdel(KEY, client.xrange(KEY)[2][0])  # a hole ahead of the group: lag unknown
    assert client.xinfo_groups(KEY)[0]["lag"] is None
    worker = RedisStreamConsumer(
        lambda event: None, redis=redis_server.url, stream=KEY, group="g", consumer="c1"
    )
    with anyio.fail_after(TIMEOUT):
        await running(worker, lambda: await_until(lambda: worker.stats.acknowledged == 4, "4"))
    assert worker.stats.missed == 0


# -- what a worker takes --------------------------------------------------------------------


@pytest.mark.anyio
async def test_without_read_ahead_a_worker_takes_entries_only_for_free_handlers(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    add_entries(client, range(1, 9))
    handler = HeldHandler()
    worker = RedisStreamConsumer(
        handler, redis=redis_server.url, stream=KEY, group="g", consumer="c1", workers=2,
        queue_size=0,
    )  # fmt: skip
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(worker.run)
        with anyio.fail_after(TIMEOUT):
            await handler.started.wait()
            await await_until(lambda: worker.stats.in_flight == 2, "both handlers busy")
        worker.stop()
        # Taken only as handlers are free to start them: 2, none read ahead.
        assert pending(client) == 2
        handler.release.set()
    assert handler.finished == ["1", "2"]
    assert pending(client) == 0
    assert client.xinfo_groups(KEY)[0]["lag"] == 6  # 3-8 left for the next worker


# -- 6. stats ---------------------------------------------------------------------------------


def test_stats_are_a_typed_dataclass_of_the_workers_counts() -> None:
    names = {field.name: field.type for field in fields(RedisWorkerStats)}
    for name in ("handled", "acknowledged", "claimed", "dead_lettered", "missed"):
        assert names[name] in (int, "int")
    worker = RedisStreamConsumer(
        lambda event: None, redis="redis://127.0.0.1:9/0", stream=KEY, group="g", consumer="c"
    )
    assert worker.stats == RedisWorkerStats()
