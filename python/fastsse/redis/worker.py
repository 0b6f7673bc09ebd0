"""Workers on a Redis Stream: a consumer group read through the Consumer's machinery.

The entries (as the relay writes them: fields ``id``, ``event``, ``data``, ``retry``) become
:class:`fastsse.Event` objects and go through a :class:`fastsse.Consumer`, so the queue, the
workers, sync and async handlers and ``on_error`` behave exactly as there. An entry is
acknowledged (XACK) once its handler has returned or raised and been reported; an entry
whose handler never finished stays pending and is claimed by a live worker once it has been
idle ``claim_idle`` seconds (XAUTOCLAIM). A worker keeps its own in-flight entries fresh
(XCLAIM of itself), so a slow handler's entries are not taken from a live worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from fastsse._fastsse import Event
from fastsse.consume.consumer import Consumer, ConsumerStats, ErrorHandler, Handler
from fastsse.redis.client import connect, redis_asyncio, text

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisStreamConsumer"]

logger = logging.getLogger("fastsse.redis")

#: How long one XREADGROUP waits for new entries, so that claims run even when idle.
_BLOCK_MS = 1000


class RedisStreamConsumer:
    """Handle the entries of the Redis Stream ``stream`` as the member ``consumer`` of the
    consumer group ``group`` (created, from the stream's first entry, if missing).

    ``handler``, ``workers``, ``queue_size`` and ``on_error`` are those of
    :class:`fastsse.Consumer`. Every entry is handled at least once while any worker of the
    group lives: at start this worker first handles what it had been given and not
    acknowledged (a restart under the same ``consumer`` name), and entries left pending by
    another worker for ``claim_idle`` seconds are claimed. ``claim_idle`` should exceed the
    time a worker may be unresponsive (its in-flight entries are kept fresh while it runs).
    A handler that raises is reported to ``on_error`` and its entry acknowledged, as a
    Consumer counts it failed and goes on; to retry, add the entry again from ``on_error``.

    ``redis`` is a URL or a client (``redis.asyncio.Redis``, or ``RedisCluster``);
    ``cluster=True`` makes a Redis Cluster client of a URL.

    ``await worker.run()`` runs until :meth:`stop`, which finishes the queued and in-flight
    handlers, acknowledges them and makes ``run()`` return.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        redis: str | Redis,
        stream: str,
        group: str,
        consumer: str,
        workers: int = 4,
        claim_idle: float = 30.0,
        queue_size: int = 256,
        on_error: ErrorHandler | None = None,
        cluster: bool = False,
    ) -> None:
        for name, value in (("stream", stream), ("group", group), ("consumer", consumer)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        if not claim_idle > 0:
            raise ValueError(f"claim_idle must be > 0 seconds, got {claim_idle!r}")
        self.stream, self.group, self.name = stream, group, consumer
        self.claim_idle = float(claim_idle)
        self._client, self._owns_client = connect(redis, cluster=cluster)
        self._errors: tuple[type[BaseException], ...] = (redis_asyncio().RedisError, OSError)
        self._queue_size = queue_size
        self._consumer = Consumer(
            _Source(self._batches),
            handler,
            workers=workers,
            queue_size=queue_size,
            overflow="block",
            on_error=on_error,
        )
        self._consumer._settled = self._settled
        self._consumer._settled_one = self._settled_one
        self._entries: dict[int, bytes] = {}  # id() of an event in the Consumer -> entry ID
        self._held: set[bytes] = set()  # entry IDs given to the Consumer, not acknowledged
        self._acks: list[bytes] = []
        self._ack_wanted: anyio.Event | None = None
        self._done = False
        #: Entries acknowledged, and entries claimed from other workers.
        self.acked = 0
        self.claimed = 0

    @property
    def stats(self) -> ConsumerStats:
        """The Consumer's counters: received, handled, failed, queued, in flight..."""
        return self._consumer.stats

    def stop(self) -> None:
        """Read no more; ``run()`` returns once the handlers finish and are acknowledged."""
        self._consumer.stop(drain=True)

    async def run(self) -> None:
        await self._create_group()
        error: BaseException | None = None
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._ack_loop)
                try:
                    await self._consumer.run()
                except Exception as raised:
                    error = raised  # raised below, not wrapped in the task group's group
                self._done = True
                self._wake_acker()
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self._flush_acks()
                except self._errors as failure:
                    logger.warning("could not acknowledge %d entries: %r", len(self._acks), failure)
                if self._owns_client:
                    await self._client.aclose()
        if error is not None:
            raise error

    async def _create_group(self) -> None:
        try:
            await self._client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis_asyncio().ResponseError as error:
            if not str(error).startswith("BUSYGROUP"):
                raise

    # -- reading: what the Consumer iterates --------------------------------------------------

    async def _batches(self) -> AsyncGenerator[list[Event], None]:
        # First the entries this consumer name was given before and never acknowledged.
        after = b"0"
        while True:
            entries = await self._read(after)
            if not entries:
                break
            after = entries[-1][0]
            yield self._events(entries)
        refresh_every = self.claim_idle / 3
        next_claim = 0.0
        failures = 0
        while True:
            try:
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + refresh_every
                    await self._refresh_held()
                    async for claimed in self._claim():
                        yield claimed
                entries = await self._read(b">", block=min(_BLOCK_MS, int(refresh_every * 1000)))
                failures = 0
            except self._errors as error:
                failures += 1
                delay = min(2.0, 0.05 * 2**failures)
                logger.warning("Redis failed (%r); reading again in %.2f s", error, delay)
                await anyio.sleep(delay)
                continue
            if entries:
                yield self._events(entries)

    async def _read(self, after: bytes, block: int | None = None) -> list[Any]:
        reply: Any = await self._client.xreadgroup(
            self.group, self.name, {self.stream: after}, count=self._queue_size, block=block
        )
        if not reply:
            return []
        # RESP2 gives [[stream, entries]], RESP3 {stream: [entries]}.
        entries: list[Any] = (
            next(iter(reply.values()))[0] if isinstance(reply, dict) else reply[0][1]
        )
        return entries

    async def _claim(self) -> AsyncGenerator[list[Event], None]:
        """Entries idle longer than ``claim_idle`` in other workers' hands, now ours."""
        cursor: Any = b"0-0"
        for _ in range(1000):  # bounded: each round moves the cursor along the pending list
            reply: Any = await self._client.xautoclaim(
                self.stream,
                self.group,
                self.name,
                int(self.claim_idle * 1000),
                start_id=cursor,
                count=self._queue_size,
            )
            cursor, entries = reply[0], [e for e in reply[1] if e[0] not in self._held]
            if entries:
                self.claimed += len(entries)
                logger.info("claimed %d entries idle for %.1f s", len(entries), self.claim_idle)
                yield self._events(entries)
            if text(cursor) == "0-0":
                return

    async def _refresh_held(self) -> None:
        """Reset the idle time of the entries in our hands, so no live worker claims them."""
        if self._held:
            await self._client.xclaim(
                self.stream, self.group, self.name, 0, list(self._held), justid=True
            )

    def _events(self, entries: Sequence[Any]) -> list[Event]:
        events = []
        for entry_id, fields in entries:
            if fields is None:
                continue  # deleted (trimmed) while pending
            retry = text(fields.get(b"retry", fields.get("retry")))
            event = Event(
                event=text(fields.get(b"event", fields.get("event"))),
                data=text(fields.get(b"data", fields.get("data"))) or "",
                id=text(fields.get(b"id", fields.get("id"))),
                # An entry another writer added may have anything there: no retry then.
                retry=int(retry) if retry is not None and retry.isdigit() else None,
            )
            key = entry_id if isinstance(entry_id, bytes) else str(entry_id).encode()
            self._entries[id(event)] = key
            self._held.add(key)
            events.append(event)
        return events

    # -- acknowledging ------------------------------------------------------------------------

    def _settled(self, first: int, events: Sequence[Event]) -> None:
        entries, acks = self._entries, self._acks
        for event in events:
            acks.append(entries.pop(id(event)))
        self._wake_acker()

    def _settled_one(self, seq: int, event: Event) -> None:
        self._acks.append(self._entries.pop(id(event)))
        self._wake_acker()

    def _wake_acker(self) -> None:
        if self._ack_wanted is not None:
            self._ack_wanted.set()

    async def _ack_loop(self) -> None:
        while not self._done:
            if not self._acks:
                self._ack_wanted = anyio.Event()
                await self._ack_wanted.wait()
                self._ack_wanted = None
                continue
            try:
                await self._flush_acks()
            except self._errors as error:
                logger.warning("could not acknowledge entries (%r); trying again", error)
                await anyio.sleep(0.1)

    async def _flush_acks(self) -> None:
        acks, self._acks = self._acks, []
        if not acks:
            return
        try:
            await self._client.xack(self.stream, self.group, *acks)
        except BaseException:
            self._acks[:0] = acks  # acknowledged later, or claimed again: never lost
            raise
        self._held.difference_update(acks)
        self.acked += len(acks)


class _Source:
    """What the Consumer reads: lists of events through ``batches()``."""

    def __init__(self, batches: Callable[[], AsyncGenerator[list[Event], None]]) -> None:
        self.batches = batches

    async def __aiter__(self) -> AsyncIterator[Event]:
        batches = self.batches()
        try:
            async for batch in batches:
                for event in batch:
                    yield event
        finally:
            await batches.aclose()
