"""fastsse.redis against a real redis-server: the relay (exactly once, fencing, failover,
Redis restarts, signals), RedisCheckpoint and RedisStreamConsumer (acks, reclaim after a kill).

Relays and workers that are killed run as subprocesses (``python -m fastsse relay``,
tests/support/redis_worker.py); every wait polls Redis or a log for the state it needs, with a
deadline.
"""

from __future__ import annotations

import logging
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import anyio
import pytest
import redis
from fastsse import Event
from fastsse.redis import (
    RedisCheckpoint,
    RedisStreamConsumer,
    Relay,
    checkpoint_key,
    lease_key,
)
from fastsse.redis.relay import _LeaseLost, _Stale
from fastsse.testing import Response, SSEServer, event
from support import redis_worker
from support.numbered_feed import numbered_feed
from support.redis_checks import (
    ENV,
    KEY,
    TIMEOUT,
    HeldHandler,
    add_entries,
    feed_that_waits,
    wait_until,
)
from support.redis_checks import entry_ids as support_entry_ids
from support.redis_server import RedisServer
from support.streams import fast_retry


def entry_ids(client: redis.Redis, key: str = KEY) -> list[int]:
    return support_entry_ids(client, key)


def holder_pid(client: redis.Redis) -> int | None:
    """The pid of the relay holding the lease (its value is host:pid:random)."""
    value = client.get(lease_key(KEY))
    return None if value is None else int(value.split(b":")[1])


class Relays:
    """``fastsse relay`` subprocesses, each logging to its own file."""

    def __init__(self, directory: Path, feed: str, redis_url: str, lease_ttl: float) -> None:
        self.directory = directory
        self.command = [
            sys.executable, "-m", "fastsse", "relay", feed,
            "--redis", redis_url, "--stream", KEY, "--lease-ttl", str(lease_ttl),
        ]  # fmt: skip
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.logs: dict[int, Path] = {}

    def start(self) -> subprocess.Popen[bytes]:
        log = self.directory / f"relay-{len(self.logs)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(self.command, stderr=output, env=ENV)
        self.processes[process.pid] = process
        self.logs[process.pid] = log
        return process

    def log(self, pid: int) -> str:
        return self.logs[pid].read_text()

    def kill_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait(TIMEOUT)

    def wait_all(self) -> list[int]:
        return [process.wait(TIMEOUT) for process in self.processes.values()]


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[Callable[..., Relays]]:
    made: list[Relays] = []

    def make(feed: str, redis_url: str, lease_ttl: float = 1.0) -> Relays:
        made.append(Relays(tmp_path, feed, redis_url, lease_ttl))
        return made[-1]

    yield make
    for group in made:
        group.kill_all()


# -- the relay in process ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_relay_appends_each_event_once_and_ends_with_the_feed(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    total = 300
    with SSEServer(numbered_feed(total, per_write=7, per_response=120)) as server:
        relay = Relay(server.url, redis=redis_server.url, stream=KEY, retry=fast_retry())
        with anyio.fail_after(TIMEOUT):
            await relay.run()
        # Resumed twice (responses of 120 events), then the 204.
        assert [r.last_event_id for r in server.requests] == [None, "120", "240", "300"]
    assert entry_ids(client) == list(range(1, total + 1))
    _, fields = client.xrange(KEY, count=1)[0]
    assert fields == {b"id": b"1", b"event": b"message", b"data": b"payload 1"}
    assert client.get(checkpoint_key(KEY)) == b"300"
    assert client.get(lease_key(KEY)) is None  # released
    assert relay.stats.events == total
    assert relay.stats.leases == 1


@pytest.mark.anyio
async def test_relay_keeps_event_type_and_retry_and_caps_the_stream(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    body = [event("a", id="1", event="tick", retry=2500)] + [
        event(f"x{i}", id=str(i)) for i in range(2, 400)
    ]
    with SSEServer(Response(body=body), Response(204)) as server:
        relay = Relay(server.url, redis=redis_server.url, stream=KEY, maxlen=100)
        with anyio.fail_after(TIMEOUT):
            await relay.run()
    ids = entry_ids(client)
    assert ids[-1] == 399
    assert 100 <= len(ids) < 399  # MAXLEN ~ trims whole nodes, so about 100 are left
    assert ids == list(range(ids[0], 400))
    assert relay.stats.events == 399


@pytest.mark.anyio
async def test_relay_logs_its_progress_and_lease_changes(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fastsse.relay")
    with SSEServer(numbered_feed(100, per_write=10, pause=0.02)) as server:
        relay = Relay(server.url, redis=redis_server.url, stream=KEY, log_interval=0.05)
        with anyio.fail_after(TIMEOUT):
            await relay.run()
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("lease acquired by") for m in messages)
    assert any(m.startswith("relayed ") and "events" in m for m in messages)
    assert any(m.startswith("the feed ended (HTTP 204): 100 events") for m in messages)
    assert any(m.startswith("lease released by") for m in messages)


@pytest.mark.anyio
async def test_relay_resumes_from_its_checkpoint(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    client.set(checkpoint_key(KEY), "250")
    with SSEServer(numbered_feed(260)) as server:
        relay = Relay(server.url, redis=redis_server.url, stream=KEY, retry=fast_retry())
        with anyio.fail_after(TIMEOUT):
            await relay.run()
        assert server.requests[0].last_event_id == "250"
    assert entry_ids(client) == list(range(251, 261))
    async with RedisCheckpoint(redis_server.url, checkpoint_key(KEY)) as checkpoint:
        assert await checkpoint.load() == "260"


@pytest.mark.anyio
async def test_an_append_without_the_lease_or_from_a_stale_checkpoint_writes_nothing(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    relay = Relay("http://127.0.0.1:9/", redis=redis_server.url, stream=KEY)
    batch = [Event(data="x", id="1")]
    client.set(lease_key(KEY), "another relay")
    relay._token = relay.name
    with pytest.raises(_LeaseLost):
        await relay._append_batch("", batch)
    client.set(lease_key(KEY), relay.name)
    relay._token = relay.name
    client.set(checkpoint_key(KEY), "7")
    with pytest.raises(_Stale):
        await relay._append_batch("6", batch)  # what a retried, already applied append sees
    assert client.xlen(KEY) == 0
    assert client.get(checkpoint_key(KEY)) == b"7"
    assert await relay._append_batch("7", batch) == "1"
    assert entry_ids(client) == [1]
    await relay._client.aclose()


@pytest.mark.anyio
async def test_a_standby_waits_and_takes_over_when_the_lease_is_free(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    client.set(lease_key(KEY), "somebody:1:x", px=300)
    with SSEServer(numbered_feed(5)) as server:
        relay = Relay(server.url, redis=redis_server.url, stream=KEY, lease_ttl=0.5)
        started = time.monotonic()
        with anyio.fail_after(TIMEOUT):
            await relay.run()
    assert time.monotonic() - started >= 0.25  # it waited for the lease to expire
    assert entry_ids(client) == [1, 2, 3, 4, 5]


# -- relays as processes ----------------------------------------------------------------------


def test_relays_killed_repeatedly_leave_every_event_once_in_order(
    redis_server: RedisServer, client: redis.Redis, relays: Callable[..., Relays]
) -> None:
    total, kills, ttl = 1000, 3, 1.0
    with SSEServer(numbered_feed(total, per_write=10, pause=0.02)) as server:
        group = relays(server.url, redis_server.url, lease_ttl=ttl)
        group.start()
        group.start()
        pauses = []
        for _ in range(kills):
            leader = wait_until(lambda: holder_pid(client), "a relay to hold the lease")
            count = client.xlen(KEY)
            wait_until(lambda n=count: client.xlen(KEY) >= n + 100, "the leader to append")
            group.processes[leader].kill()  # SIGKILL
            killed_at = time.monotonic()
            group.processes[leader].wait(TIMEOUT)
            group.start()  # two relays again
            wait_until(
                lambda old=leader: holder_pid(client) not in (None, old),
                "a standby to take the lease",
            )
            pauses.append(time.monotonic() - killed_at)
        statuses = group.wait_all()
    killed = [p.pid for p in group.processes.values() if p.returncode == -signal.SIGKILL]
    assert len(killed) == kills
    assert [s for s in statuses if s != -signal.SIGKILL] == [0, 0]
    assert entry_ids(client) == list(range(1, total + 1))
    assert all(pause < ttl + 1.0 for pause in pauses), pauses
    print(f"failover pauses after SIGKILL (lease TTL {ttl} s): {pauses}")


def test_a_paused_leader_cannot_write_after_losing_its_lease(
    redis_server: RedisServer, client: redis.Redis, relays: Callable[..., Relays]
) -> None:
    total = 600
    with SSEServer(numbered_feed(total, per_write=10, pause=0.02)) as server:
        group = relays(server.url, redis_server.url, lease_ttl=0.5)
        group.start()
        leader = wait_until(lambda: holder_pid(client), "the first relay to lead")
        group.start()
        wait_until(lambda: client.xlen(KEY) >= 50, "entries")
        group.processes[leader].send_signal(signal.SIGSTOP)
        wait_until(lambda: holder_pid(client) not in (None, leader), "the standby to lead")
        count = client.xlen(KEY)
        wait_until(lambda: client.xlen(KEY) > count + 50, "the new leader to append")
        group.processes[leader].send_signal(signal.SIGCONT)
        wait_until(lambda: "lease lost" in group.log(leader), "the old leader to step down")
        assert group.wait_all() == [0, 0]
    assert entry_ids(client) == list(range(1, total + 1))


def test_relay_survives_a_redis_restart_without_loss(
    redis_server: RedisServer, client: redis.Redis, relays: Callable[..., Relays]
) -> None:
    total, first = 800, 300
    go_on = threading.Event()
    with SSEServer(feed_that_waits(total, first, go_on)) as server:
        group = relays(server.url, redis_server.url, lease_ttl=2.0)
        relay = group.start()
        wait_until(lambda: client.xlen(KEY) == first, "the feed's first part")
        # Redis dies while the relay waits for the feed, and the feed goes on while Redis is
        # down: the relay's appends fail until Redis is back from its append-only file.
        redis_server.kill()
        go_on.set()
        wait_until(lambda: "Redis failed" in group.log(relay.pid), "the relay to see it")
        redis_server.start()
        restarted = redis_server.client()
        assert relay.wait(TIMEOUT) == 0
        assert entry_ids(restarted) == list(range(1, total + 1))
        assert restarted.get(checkpoint_key(KEY)) == str(total).encode()
        # Resumed after the checkpoint the failed term had left.
        assert [r.last_event_id for r in server.requests][:2] == [None, str(first)]
        restarted.close()


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_relay_stops_cleanly_on_a_signal_and_releases_its_lease(
    redis_server: RedisServer,
    client: redis.Redis,
    relays: Callable[..., Relays],
    sig: signal.Signals,
    status: int,
) -> None:
    with SSEServer(numbered_feed(10**6, per_write=10, pause=0.05)) as server:
        group = relays(server.url, redis_server.url, lease_ttl=30.0)
        relay = group.start()
        wait_until(lambda: client.xlen(KEY) >= 10, "entries")
        relay.send_signal(sig)
        assert relay.wait(TIMEOUT) == status
    assert client.get(lease_key(KEY)) is None  # released, not left to expire in 30 s
    log = group.log(relay.pid)
    assert "Traceback" not in log
    assert "lease acquired" in log
    assert "lease released" in log
    assert client.get(checkpoint_key(KEY)) == str(entry_ids(client)[-1]).encode()


def test_relay_command_reports_bad_arguments(relays: Callable[..., Relays]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fastsse", "relay", "http://x/", "--redis", "redis://x"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "--stream" in result.stderr
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastsse",
            "relay",
            "http://x/",
            "--redis",
            "redis://x",
            "--stream",
            "k",
            "-H",
            "no colon",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "'Name: value'" in result.stderr


# -- the consumer group -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_workers_handle_every_entry_once_and_acknowledge_it(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    total = 500
    add_entries(client, range(1, total + 1))
    seen: list[Event] = []

    async def handle(event: Event) -> None:
        seen.append(event)
        if len(seen) == total:
            worker.stop()

    worker = RedisStreamConsumer(
        handle, redis=redis_server.url, stream=KEY, group="g", consumer="c1", workers=4
    )
    with anyio.fail_after(TIMEOUT):
        await worker.run()
    assert sorted(int(e.id) for e in seen) == list(range(1, total + 1))
    assert seen[0] == Event(event="message", data="payload 1", id="1")
    assert worker.acked == total
    assert client.xpending(KEY, "g")["pending"] == 0


@pytest.mark.anyio
async def test_stop_finishes_in_flight_handlers_and_acknowledges_them(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    add_entries(client, range(1, 9))
    handler = HeldHandler()
    worker = RedisStreamConsumer(
        handler, redis=redis_server.url, stream=KEY, group="g", consumer="c1", workers=2
    )
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(worker.run)
        with anyio.fail_after(TIMEOUT):
            await handler.started.wait()
        worker.stop()
        assert client.xpending(KEY, "g")["pending"] == 8  # delivered, nothing acknowledged
        handler.release.set()
    assert sorted(handler.finished, key=int) == [str(i) for i in range(1, 9)]
    assert client.xpending(KEY, "g")["pending"] == 0


@pytest.mark.anyio
async def test_a_failing_handler_is_reported_and_its_entry_acknowledged(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    add_entries(client, range(1, 4))
    failures: list[tuple[str, str]] = []

    async def handle(event: Event) -> None:
        if event.id == "2":
            raise ValueError("bad entry")
        if event.id == "3":
            worker.stop()

    worker = RedisStreamConsumer(
        handle,
        redis=redis_server.url,
        stream=KEY,
        group="g",
        consumer="c1",
        workers=1,
        on_error=lambda event, error: failures.append((event.id, str(error))),
    )
    with anyio.fail_after(TIMEOUT):
        await worker.run()
    assert failures == [("2", "bad entry")]
    assert worker.stats.failed == 1
    assert client.xpending(KEY, "g")["pending"] == 0


def test_a_killed_workers_entries_are_claimed_and_handled(
    redis_server: RedisServer, client: redis.Redis, tmp_path: Path
) -> None:
    total, claim_idle = 200, 0.5
    add_entries(client, range(1, total + 1))
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    script = redis_worker.__file__

    def run(consumer: str, log: Path, hold: str) -> subprocess.Popen[bytes]:
        args = [redis_server.url, KEY, consumer, str(log), hold, str(claim_idle)]
        return subprocess.Popen([sys.executable, script, *args], env=ENV)

    a = run("a", log_a, hold="7")
    try:
        wait_until(lambda: log_a.exists() and "start 7\n" in log_a.read_text(), "a to hold 7")
    finally:
        a.kill()
        a.wait(TIMEOUT)
    pending = client.xpending(KEY, "workers")["pending"]
    assert pending >= 1  # 7 at least was given to a and never acknowledged
    b = run("b", log_b, hold="none")
    try:
        wait_until(lambda: client.xpending(KEY, "workers")["pending"] == 0, "b to ack all")
    finally:
        b.send_signal(signal.SIGTERM)
        b.wait(TIMEOUT)
    done_a = {int(line.split()[1]) for line in log_a.read_text().splitlines() if "done" in line}
    done_b = [int(line.split()[1]) for line in log_b.read_text().splitlines() if "done" in line]
    assert 7 not in done_a
    assert 7 in done_b
    assert done_a | set(done_b) == set(range(1, total + 1))
    duplicates = len(done_a) + len(done_b) - total
    assert duplicates <= pending
    print(f"a was killed with {pending} entries pending; {duplicates} handled twice")


# -- the README -------------------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Beyond one machine")
    return text[start : text.index("\n## ", start + 1)]


def test_readme_relay_command_parses() -> None:
    from fastsse.cli import build_parser

    command = next(
        line.strip()
        for line in readme_section().splitlines()
        if line.strip().startswith("fastsse relay http")
    )
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert (args.command, args.stream, args.lease_ttl) == ("relay", "feed", 5.0)
    assert args.redis.startswith("redis://")


def test_readme_worker_handles_entries_and_stops_on_sigterm(
    redis_server: RedisServer, client: redis.Redis, tmp_path: Path
) -> None:
    match = re.search(r"```python\n# worker.py\n(.*?)```", readme_section(), re.S)
    assert match is not None
    worker = tmp_path / "worker.py"
    worker.write_text(match.group(1).replace("redis://127.0.0.1:6379/0", redis_server.url))
    add_entries(client, range(1, 4))
    process = subprocess.Popen(
        [sys.executable, str(worker)],
        stdout=subprocess.PIPE,
        text=True,
        env={**ENV, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        assert lines == [f"{i} payload {i}\n" for i in range(1, 4)]
        wait_until(lambda: client.xpending(KEY, "workers")["pending"] == 0, "the acks")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT) == 0


def test_without_redis_py_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)  # import redis.asyncio fails
    with pytest.raises(
        ImportError, match=r"redis-py \(redis>=5\), which is not installed: pip install redis$"
    ):
        RedisCheckpoint("redis://127.0.0.1:9/0", "key")
