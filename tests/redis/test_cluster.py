"""The relay and its workers on a real local Redis Cluster (three masters, three replicas).

One cluster for the module (started once, about 3 s); each test uses keys of its own. The
failover test kills a master, so it runs last and leaves a cluster of three masters and two
replicas behind it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Callable

import anyio
import pytest
import redis
from fastsse import Event
from fastsse.redis import RedisCheckpoint, RedisStreamConsumer, Relay, checkpoint_key, lease_key
from fastsse.testing import SSEServer
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.crc import key_slot
from support.numbered_feed import numbered_feed
from support.redis_checks import ENV, TIMEOUT, entry_ids, wait_until
from support.redis_cluster import LocalCluster
from support.streams import fast_retry


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[RedisCluster]:
    client = cluster.client()
    yield client
    client.close()


def slots(stream: str) -> set[int]:
    return {key_slot(key.encode()) for key in (stream, lease_key(stream), checkpoint_key(stream))}


@pytest.mark.anyio
async def test_two_relays_land_in_different_slots_and_a_worker_on_each_handles_every_entry(
    cluster: LocalCluster, client: RedisCluster
) -> None:
    total = 300
    streams = ("feed-a", "feed-b")
    assert slots(streams[0]) != slots(streams[1])
    assert all(len(slots(stream)) == 1 for stream in streams)  # the fenced script can run
    assert cluster.master_of(streams[0]).port != cluster.master_of(streams[1]).port
    ready = AsyncRedisCluster.from_url(cluster.url)  # a client object is accepted too
    with (
        SSEServer(numbered_feed(total, per_write=10)) as a,
        SSEServer(numbered_feed(total, per_write=7)) as b,
    ):
        relays = [
            Relay(a.url, redis=cluster.url, cluster=True, stream=streams[0], retry=fast_retry()),
            Relay(b.url, redis=ready, stream=streams[1], retry=fast_retry()),
        ]
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tasks:
                for relay in relays:
                    tasks.start_soon(relay.run)
    for stream in streams:
        assert entry_ids(client, stream) == list(range(1, total + 1))
        assert client.get(checkpoint_key(stream)) == str(total).encode()
        assert client.get(lease_key(stream)) is None

    handled: dict[str, list[str]] = {stream: [] for stream in streams}

    def handler(stream: str) -> Callable[[Event], Awaitable[None]]:
        async def handle(event: Event) -> None:
            handled[stream].append(event.id)
            if len(handled[stream]) == total:
                workers[stream].stop()

        return handle

    workers = {
        stream: RedisStreamConsumer(
            handler(stream),
            redis=cluster.url,
            cluster=True,
            stream=stream,
            group="workers",
            consumer="w1",
        )
        for stream in streams
    }
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tasks:
            for worker in workers.values():
                tasks.start_soon(worker.run)
    for stream in streams:
        assert sorted(map(int, handled[stream])) == list(range(1, total + 1))
        assert client.xpending(stream, "workers")["pending"] == 0
        async with RedisCheckpoint(cluster.url, checkpoint_key(stream), cluster=True) as cp:
            assert await cp.load() == str(total)
    await ready.aclose()


@pytest.mark.anyio
async def test_a_worker_given_a_cluster_client_dead_letters_in_the_streams_slot(
    cluster: LocalCluster, client: RedisCluster
) -> None:
    # The entry was delivered to "w1" once and never acknowledged (its handler killed the
    # process, say): with max_deliveries=1 the restarted "w1" moves it to the dead-letter
    # stream at once, with a MULTI that needs both streams in one slot.
    stream = "poison-d"
    client.xadd(stream, {"id": "1", "event": "message", "data": "boom"})
    client.xgroup_create(stream, "workers", id="0")
    client.xreadgroup("workers", "w1", {stream: ">"})
    ready = AsyncRedisCluster.from_url(cluster.url)  # a client object, without cluster=True

    async def handle(event: Event) -> None:
        raise AssertionError("a dead-lettered entry reaches no handler")

    worker = RedisStreamConsumer(
        handle, redis=ready, stream=stream, group="workers", consumer="w1", max_deliveries=1
    )
    assert key_slot(worker.dead_letter.encode()) == key_slot(stream.encode())
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(worker.run)
            while worker.stats.dead_lettered == 0:
                await anyio.sleep(0.01)
            worker.stop()
    assert client.xpending(stream, "workers")["pending"] == 0
    [(_, fields)] = client.xrange(worker.dead_letter)
    assert fields[b"data"] == b"boom"
    assert fields[b"source-id"] == client.xrange(stream)[0][0]
    await ready.aclose()


def test_a_dead_letter_stream_outside_the_streams_slot_is_refused(cluster: LocalCluster) -> None:
    async def handle(event: Event) -> None:
        pass

    assert key_slot(b"elsewhere:dead") != key_slot(b"feed-e")
    with pytest.raises(ValueError, match="hash slot"):
        RedisStreamConsumer(
            handle,
            redis=cluster.url,
            cluster=True,
            stream="feed-e",
            group="workers",
            consumer="w1",
            dead_letter="elsewhere:dead",
        )


def xlen(client: RedisCluster, key: str) -> int | None:
    """The stream's length, or None while its slot has no reachable master."""
    try:
        return int(client.xlen(key))
    except redis.RedisError:
        return None


def new_master(cluster: LocalCluster, key: str, old: int) -> int | None:
    try:
        port = cluster.master_of(key).port
    except (AssertionError, redis.RedisError):
        return None
    return port if port != old else None


def test_a_killed_masters_replica_takes_over_and_the_stream_holds_every_event_once(
    cluster: LocalCluster, client: RedisCluster, tmp_path: Path
) -> None:
    total, stream = 1500, "feed-c"
    with SSEServer(numbered_feed(total, per_write=10, pause=0.01)) as server:
        log = tmp_path / "relay.log"
        command = [
            sys.executable, "-m", "fastsse", "relay", server.url, "--redis", cluster.url,
            "--cluster", "--stream", stream, "--lease-ttl", "2",
        ]  # fmt: skip
        with log.open("wb") as output:
            relay = subprocess.Popen(command, stderr=output, env=ENV)
        try:
            wait_until(lambda: (xlen(client, stream) or 0) >= 200, "the relay to append")
            master = cluster.master_of(stream)
            at_kill = xlen(client, stream)
            master.kill()  # SIGKILL
            killed = time.monotonic()
            promoted = wait_until(lambda: new_master(cluster, stream, master.port), "a failover")
            failover = time.monotonic() - killed
            kept = cluster._by_port(promoted).client().xlen(stream)
            assert at_kill is not None
            wait_until(lambda: (xlen(client, stream) or 0) > at_kill, "appends to go on")
            pause = time.monotonic() - killed
            assert relay.wait(TIMEOUT * 2) == 0, log.read_text()
        finally:
            if relay.poll() is None:
                relay.send_signal(signal.SIGKILL)
                relay.wait(TIMEOUT)
    text = log.read_text()
    assert "Traceback" not in text
    # What the relay saw (redis-py's cluster client retries a while on its own; then, by how
    # long the failover took, a Redis error, its lease expired on the replica, or nothing)
    # varies; what it left does not.
    assert entry_ids(client, stream) == list(range(1, total + 1))
    assert client.get(checkpoint_key(stream)) == str(total).encode()
    cluster.wait_until_ok()
    print(
        f"failover: replica promoted {failover:.2f} s after the master's SIGKILL, appends "
        f"resumed after {pause:.2f} s; the stream had {at_kill} entries at the kill, "
        f"{kept} on the promoted replica; every event once, in order"
    )
