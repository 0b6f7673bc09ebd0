"""The relay's edges against a real redis-server: a checkpoint that never goes backwards, an
append that a retry cannot make twice, one-line errors from ``fastsse relay``, the lease as
redis-py's Lock (and its fencing), and the key names (one hash slot per relay).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.abc
import pytest
import redis
from fastsse import Event
from fastsse.redis import (
    CheckpointBackwardsError,
    FeedWithoutIdsError,
    Relay,
    checkpoint_key,
    lease_key,
)
from fastsse.redis.relay import _LeaseLost
from fastsse.testing import Action, RecordedRequest, Response, SSEServer, delay, event
from redis.crc import key_slot
from support.numbered_feed import numbered_feed
from support.redis_checks import ENV, TIMEOUT, feed_that_waits, wait_until
from support.redis_server import RedisServer
from support.streams import closed_port, fast_retry

KEY = "feed"


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    yield client
    client.close()


def stream_ids(client: redis.Redis, key: str = KEY) -> list[str]:
    return [fields[b"id"].decode() for _, fields in client.xrange(key)]


def run_relay_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastsse", "relay", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=TIMEOUT,
    )


def resumable(*events: bytes, split: bool) -> Response | object:
    """A feed of ``events`` (each with an ``id:`` line first, or none) that resumes after the
    Last-Event-ID it is sent; all in one write, or one write each."""

    def respond(request: RecordedRequest) -> Response:
        start = 0
        if request.last_event_id is not None:
            heads = [e.split(b"\n", 1)[0] for e in events]
            start = heads.index(f"id: {request.last_event_id}".encode()) + 1
        rest = list(events[start:])
        if not rest:
            return Response(204)
        body: list[Action] = []
        if split:
            for one in rest:
                body += [one, delay(0.01)]
        else:
            body = [b"".join(rest)]
        return Response(body=body)

    return respond


# -- 6. the checkpoint never goes backwards ---------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("split", [False, True], ids=["one-write", "one-event-a-write"])
async def test_an_id_reset_stops_the_relay_and_a_restarted_relay_never_replays(
    redis_server: RedisServer, client: redis.Redis, split: bool
) -> None:
    feed = resumable(
        event("a", id="a"),
        event("b", id="b"),
        event("c", id="c"),
        event("d", id=""),  # `id:` with no value: the spec's reset of the last event ID
        event("e", id="e"),
        split=split,
    )
    with SSEServer(feed) as server:
        for _ in range(2):
            relay = Relay(server.url, redis=redis_server.url, stream=KEY, retry=fast_retry())
            with anyio.fail_after(TIMEOUT), pytest.raises(CheckpointBackwardsError) as raised:
                await relay.run()
            assert "its id is empty (an id: reset) after 'c'" in str(raised.value)
        # The second run resumed after c, met the reset again and appended nothing.
        assert [r.last_event_id for r in server.requests] == [None, "c"]
    assert stream_ids(client) == ["a", "b", "c"]
    assert [f[b"data"] for _, f in client.xrange(KEY)] == [b"a", b"b", b"c"]
    assert client.get(checkpoint_key(KEY)) == b"c"
    assert client.get(lease_key(KEY)) is None  # released on the way out


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("events", "relayed", "why"),
    [
        # An event without an id: field after ids carries the last one again.
        ([event("1", id="1"), event("2", id="2"), event("3")], ["1", "2"], "'2' is that of"),
        ([event("1", id="1"), event("3", id="3"), event("2", id="2")], ["1", "3"], "2 is lower"),
        ([event("9", id="9"), event("10", id="10"), event("x", id="x")], ["9", "10", "x"], None),
    ],
    ids=["event-without-id", "lower-decimal-id", "forward"],
)
async def test_an_id_that_would_move_the_checkpoint_back_stops_the_relay(
    redis_server: RedisServer,
    client: redis.Redis,
    events: list[bytes],
    relayed: list[str],
    why: str | None,
) -> None:
    with SSEServer(Response(body=events), Response(204)) as server:
        relay = Relay(server.url, redis=redis_server.url, stream=KEY, retry=fast_retry())
        with anyio.fail_after(TIMEOUT):
            if why is None:
                await relay.run()  # decimal 9 < 10 compares as numbers; x is not ordered
            else:
                with pytest.raises(CheckpointBackwardsError, match=why):
                    await relay.run()
    assert stream_ids(client) == relayed
    assert client.get(checkpoint_key(KEY)) == relayed[-1].encode()


@pytest.mark.anyio
async def test_a_feed_that_resends_the_checkpoints_event_stops_the_relay(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    client.set(checkpoint_key(KEY), "5")
    # A server that resumes "from" the id instead of after it: event 5 would be appended twice.
    with SSEServer(Response(body=[event("5", id="5"), event("6", id="6")])) as server:
        relay = Relay(server.url, redis=redis_server.url, stream=KEY)
        with anyio.fail_after(TIMEOUT), pytest.raises(CheckpointBackwardsError, match="'5'"):
            await relay.run()
        assert server.requests[0].last_event_id == "5"
    assert client.xlen(KEY) == 0
    assert client.get(checkpoint_key(KEY)) == b"5"


@pytest.mark.anyio
async def test_a_feed_without_ids_is_refused(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    with SSEServer(Response(body=[event("a"), event("b")])) as server:
        relay = Relay(server.url, redis=redis_server.url, stream=KEY)
        with anyio.fail_after(TIMEOUT), pytest.raises(FeedWithoutIdsError, match="exactly once"):
            await relay.run()
    assert client.xlen(KEY) == 0
    assert client.get(checkpoint_key(KEY)) is None
    assert client.get(lease_key(KEY)) is None


def test_the_relay_command_refuses_a_feed_without_ids_in_one_line_exit_2(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    with SSEServer(Response(body=[event("a"), event("b")])) as server:
        result = run_relay_command(server.url, "--redis", redis_server.url, "--stream", KEY)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("fastsse relay: error: the feed's events carry no id: ")
    assert "Last-Event-ID" in last
    assert "exactly once" in last
    assert client.xlen(KEY) == 0


def test_the_relay_command_stops_at_an_id_reset_in_one_line_exit_1(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    body = [event("a", id="1"), event("b", id="2"), event("reset", id=""), event("c", id="3")]
    with SSEServer(Response(body=body)) as server:
        result = run_relay_command(server.url, "--redis", redis_server.url, "--stream", KEY)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("fastsse relay: error: an event would move the relay's checkpoint back")
    assert stream_ids(client) == ["1", "2"]


# -- 7. the append is idempotent per batch ----------------------------------------------------


@pytest.mark.anyio
async def test_an_append_retried_after_its_reply_was_lost_appends_nothing(
    redis_server: RedisServer, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="fastsse.relay")
    relay = Relay("http://127.0.0.1:9/", redis=redis_server.url, stream=KEY)
    try:
        await relay._wait_for_lease()
        batch = [Event(data="x", id="1"), Event(data="y", id="2")]
        # The same call twice, as redis-py makes it again when the first reply is lost.
        assert await relay._append_batch("", batch) == "2"
        assert await relay._append_batch("", batch) == "2"
        assert stream_ids(client) == ["1", "2"]
        assert client.get(checkpoint_key(KEY)) == b"2"
        assert relay.stats.already_appended == 1
        assert any("were already appended" in r.getMessage() for r in caplog.records)
        # The script itself: 2 appended, then -1 (already in) for the same batch.
        args = [relay.name, 0, "2", "3", 2, "id", "3"]
        assert await relay._append(relay._keys, args) == 1
        assert await relay._append(relay._keys, args) == -1
        assert stream_ids(client) == ["1", "2", "3"]
        assert await relay._append_batch("3", [Event(data="z", id="4")]) == "4"
        assert stream_ids(client) == ["1", "2", "3", "4"]
        assert relay.stats.already_appended == 1
    finally:
        await relay._give_up_lease()
        await relay._client.aclose()


class LosingProxy:
    """A TCP proxy to Redis that, once armed, forwards the next script call and then drops
    Redis's reply and cuts the connection: the call ran, its caller never hears it did."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.armed = False
        self.dropped = 0

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        dropping = False
        server = await anyio.connect_tcp("127.0.0.1", self.upstream)
        async with client, server, anyio.create_task_group() as tasks:

            async def up() -> None:
                nonlocal dropping
                async for chunk in client:
                    if self.armed and b"EVALSHA" in chunk:
                        self.armed, dropping = False, True
                    await server.send(chunk)
                tasks.cancel_scope.cancel()

            async def down() -> None:
                async for chunk in server:
                    if dropping:
                        self.dropped += 1
                        break  # the reply is lost, and the connection with it
                    await client.send(chunk)
                tasks.cancel_scope.cancel()

            tasks.start_soon(up)
            tasks.start_soon(down)


@pytest.mark.anyio
async def test_redis_pys_retry_of_an_append_whose_reply_was_lost_appends_nothing_more(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    from redis.asyncio import Redis as AsyncRedis

    proxy = LosingProxy(redis_server.port)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, proxy.handle)
        # A client as made by default: it retries a command after a connection error.
        relay = Relay("http://127.0.0.1:9/", redis=AsyncRedis(port=port), stream=KEY)
        with anyio.fail_after(TIMEOUT):
            await relay._wait_for_lease()
            await relay._append_batch("", [Event(data="a", id="1")])  # loads the script
            proxy.armed = True
            assert await relay._append_batch("1", [Event(data="b", id="2")]) == "2"
            await relay._give_up_lease()
        await relay._client.aclose()
        tasks.cancel_scope.cancel()
    assert proxy.dropped == 1
    assert stream_ids(client) == ["1", "2"]
    assert relay.stats.already_appended == 1


def test_the_append_script_is_packaged_beside_the_code() -> None:
    from importlib.resources import files

    script = files("fastsse.redis").joinpath("append.lua").read_text("utf-8")
    assert "FENCED" in script
    assert "return -1" in script


# -- 8. one line, exit 1, when the feed fails for good ----------------------------------------


@pytest.mark.parametrize(
    ("response", "said"),
    [
        (Response(404), "answered 404 Not Found"),
        (Response(body=b"<html>hello</html>", content_type="text/html"), "text/html"),
    ],
    ids=["404", "html"],
)
def test_the_relay_command_reports_a_failing_feed_in_one_line(
    redis_server: RedisServer, response: Response, said: str
) -> None:
    with SSEServer(response) as server:
        result = run_relay_command(server.url, "--redis", redis_server.url, "--stream", KEY)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "ExceptionGroup" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("fastsse relay: error: GET http://127.0.0.1:")
    assert said in errors[0]


# -- 9. the lease is redis-py's Lock, and it fences -------------------------------------------


@pytest.mark.anyio
async def test_the_lease_is_a_lock_that_expires_and_fences_a_relay_that_lost_it(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    relay = Relay("http://127.0.0.1:9/", redis=redis_server.url, stream=KEY, lease_ttl=0.3)
    try:
        await relay._wait_for_lease()
        assert client.get(lease_key(KEY)) == relay.name.encode()
        assert 0 < client.pttl(lease_key(KEY)) <= 300
        assert await relay._lease.owned()
        # Paused past its TTL (it renews nothing meanwhile): the lease expires, another takes it.
        wait_until(lambda: client.get(lease_key(KEY)) is None, "the lease to expire", 5.0)
        assert client.set(lease_key(KEY), "another:1:relay", nx=True, px=10_000)
        with pytest.raises(_LeaseLost):
            await relay._append_batch("", [Event(data="x", id="1")])
        assert client.xlen(KEY) == 0
        assert client.get(checkpoint_key(KEY)) is None
        # Renewing finds the lease gone at once.
        expired = anyio.Event()
        relay._leased_at = time.monotonic()
        with anyio.fail_after(TIMEOUT):
            await relay._keep_lease(expired)
        assert expired.is_set()
        # Releasing leaves the other relay's lease alone.
        relay._token = relay.name
        await relay._give_up_lease()
        assert client.get(lease_key(KEY)) == b"another:1:relay"
    finally:
        await relay._client.aclose()


@pytest.mark.anyio
async def test_a_relay_keeps_its_own_lease_across_a_failed_term(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    relay = Relay("http://127.0.0.1:9/", redis=redis_server.url, stream=KEY, lease_ttl=30.0)
    try:
        await relay._wait_for_lease()
        client.pexpire(lease_key(KEY), 1000)
        # A new term (after a Redis error) finds the lease still its own: renewed, not waited for.
        with anyio.fail_after(1.0):
            await relay._wait_for_lease()
        assert client.pttl(lease_key(KEY)) > 1000
        assert relay.stats.leases == 2
    finally:
        await relay._give_up_lease()
        await relay._client.aclose()
    assert client.get(lease_key(KEY)) is None


# -- the keys: one hash slot per relay --------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "lease", "checkpoint"),
    [
        ("feed", "{feed}:lease", "{feed}:last-event-id"),
        ("{tenant-7}:feed", "{tenant-7}:feed:lease", "{tenant-7}:feed:last-event-id"),
        ("a:b", "{a:b}:lease", "{a:b}:last-event-id"),
    ],
)
def test_a_relays_keys_share_the_streams_hash_slot(
    stream: str, lease: str, checkpoint: str
) -> None:
    assert (lease_key(stream), checkpoint_key(stream)) == (lease, checkpoint)
    assert key_slot(stream.encode()) == key_slot(lease.encode()) == key_slot(checkpoint.encode())


@pytest.mark.parametrize("stream", ["a{}b", "x}y", "{open"])
def test_a_stream_with_braces_but_no_hash_tag_is_refused(stream: str) -> None:
    with pytest.raises(ValueError, match="hash tag"):
        Relay("http://127.0.0.1:9/", redis="redis://127.0.0.1:9/0", stream=stream)


@pytest.mark.anyio
async def test_a_checkpoint_under_the_old_key_name_is_resumed_from(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    client.set(f"{KEY}:last-event-id", "250")  # where relays kept it before the hash tags
    with SSEServer(numbered_feed(260)) as server:
        relay = Relay(server.url, redis=redis_server.url, stream=KEY, retry=fast_retry())
        with anyio.fail_after(TIMEOUT):
            await relay.run()
        assert server.requests[0].last_event_id == "250"
    assert [int(i) for i in stream_ids(client)] == list(range(251, 261))
    assert client.get(checkpoint_key(KEY)) == b"260"


# -- what a failover that lost the last appends leaves behind ---------------------------------


@pytest.mark.anyio
async def test_a_relay_whose_last_appends_were_lost_resumes_from_the_checkpoint_it_finds(
    redis_server: RedisServer, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """As after a failover to a replica that had not received the last appends: entries and
    checkpoint go back together (one slot, one replication stream); the relay must neither
    skip the lost events nor append any twice."""
    caplog.set_level("INFO", logger="fastsse.relay")
    total, first, lost = 600, 300, 50
    go_on = threading.Event()
    with SSEServer(feed_that_waits(total, first, go_on)) as server:
        relay = Relay(server.url, redis=redis_server.url, stream=KEY, retry=fast_retry())
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(relay.run)
            with anyio.fail_after(TIMEOUT):
                while client.get(checkpoint_key(KEY)) != str(first).encode():
                    await anyio.sleep(0.01)
            last = [entry for entry, _ in client.xrevrange(KEY, count=lost)]
            with client.pipeline(transaction=True) as rewind:  # MULTI: both or neither
                rewind.xdel(KEY, *last)
                rewind.set(checkpoint_key(KEY), str(first - lost))
                rewind.execute()
            go_on.set()
            with anyio.fail_after(TIMEOUT):
                while relay.stats.leases < 2:  # a new term, from the checkpoint found
                    await anyio.sleep(0.01)
        assert [r.last_event_id for r in server.requests][:2] == [None, str(first - lost)]
    assert [int(i) for i in stream_ids(client)] == list(range(1, total + 1))
    assert client.get(checkpoint_key(KEY)) == str(total).encode()
    messages = [record.getMessage() for record in caplog.records]
    assert "the checkpoint moved under this relay; resuming from it" in messages


# -- 10. no secret of a URL in what the relay prints ---------------------------------------------


def _require_password(redis_server: RedisServer, password: str) -> None:
    client = redis_server.client()
    try:
        client.config_set("requirepass", password)
    finally:
        client.close()


@pytest.mark.parametrize(
    "response",
    [
        Response(404, b"no feed at /feed?token=FEEDTOKEN", content_type="text/plain"),
        Response(300, b"", {"Location": "/elsewhere?signature=SIGVALUE"}, content_type=None),
    ],
    ids=["404", "300"],
)
def test_the_relay_command_shows_neither_the_feeds_token_nor_the_redis_password(
    redis_server: RedisServer, response: Response
) -> None:
    _require_password(redis_server, "REDISPW")
    redis_url = f"redis://:REDISPW@127.0.0.1:{redis_server.port}/0"
    with SSEServer(response) as server:
        result = run_relay_command(
            server.url + "feed?token=FEEDTOKEN", "--redis", redis_url, "--stream", KEY
        )
    assert result.returncode == 1, result.stderr
    assert "lease acquired" in result.stderr  # Redis took the password.
    assert "token=[secure]" in result.stderr
    for secret in ("FEEDTOKEN", "SIGVALUE", "REDISPW"):
        assert secret not in result.stderr, result.stderr


def test_a_redis_password_is_not_in_the_relays_redis_errors(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    _require_password(redis_server, "REDISPW")
    log = tmp_path / "relay.log"
    command = [
        sys.executable, "-m", "fastsse", "relay", "http://127.0.0.1:1/feed?token=FEEDTOKEN",
        "--redis", f"redis://:WRONGPW@127.0.0.1:{redis_server.port}/0", "--stream", KEY,
    ]  # fmt: skip
    with log.open("wb") as output:
        relay = subprocess.Popen(command, stderr=output, env=ENV)
    try:
        wait_until(lambda: "Redis failed" in log.read_text(), "the relay's Redis error")
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(TIMEOUT) == 0
    finally:
        if relay.poll() is None:
            relay.send_signal(signal.SIGKILL)
            relay.wait(TIMEOUT)
    text = log.read_text()
    assert "AuthenticationError" in text
    assert "WRONGPW" not in text
    assert "FEEDTOKEN" not in text


@pytest.mark.anyio
async def test_a_relay_waits_for_a_cluster_it_cannot_reach_yet_as_for_a_single_redis() -> None:
    # A cluster client that reaches no node raises redis-py's RedisClusterException, which
    # is no RedisError: the relay must retry it as it retries a Redis that is down.
    relay = Relay(
        "http://127.0.0.1:1/feed",
        redis=f"redis://127.0.0.1:{closed_port()}",
        cluster=True,
        stream=KEY,
    )
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(relay.run)
            while relay.stats.redis_errors < 2:
                await anyio.sleep(0.01)
            relay.stop()
    assert relay.stats.leases == 0
