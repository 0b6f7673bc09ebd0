"""Workers on a Redis Stream: a consumer group read through the Consumer's machinery.

The entries (as the relay writes them: fields ``id``, ``event``, ``data``, ``retry``) become
:class:`fastsse.Event` objects and go through a :class:`fastsse.Consumer`, so the workers, sync
and async handlers and ``on_error`` behave exactly as there. An entry is acknowledged (XACK)
once its handler has returned or raised and been reported; an entry whose handler never
finished stays pending and is claimed by a live worker once it has been idle ``claim_idle``
seconds. A task of its own, never held up by the handlers or the reader, keeps the entries a
worker holds fresh (XCLAIM JUSTID), so no live worker's entries are ever claimed.

An entry delivered before (claimed, or this consumer's own after a restart) is taken alone,
when a handler is free to start it, so that an entry's delivery count in the group's pending
list counts the times it reached a handler (a new entry read ahead into the queue when the
process dies counts one more): past ``max_deliveries`` it goes to the dead-letter stream.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import anyio

from fastsse._errors import FastSSEError
from fastsse._fastsse import Event
from fastsse.consume.consumer import (
    Consumer,
    ConsumerStats,
    ErrorHandler,
    Handler,
    _check_count,
    _is_async_callable,
)
from fastsse.redis.client import connect, key_slot, redis_asyncio, redis_errors, text
from fastsse.redis.relay import hash_tag

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["HandlerTimeoutError", "RedisStreamConsumer", "RedisWorkerStats"]

logger = logging.getLogger("fastsse.redis")

#: How long one XREADGROUP waits for new entries, so that claims run even when idle.
_BLOCK_MS = 1000
#: Housekeeping (idle consumers, entries trimmed unread) runs at least this often (seconds).
_HOUSEKEEPING_EVERY = 5.0
#: With a backlog, entries trimmed unread are counted only when the backlog is at most this
#: long (it is counted with one XRANGE); otherwise at the next look.
_MAX_BACKLOG_COUNTED = 1000
#: Pending entries looked at per XPENDING while claiming.
_PENDING_PAGE = 64

#: Resets the idle time of the entries ARGV[3...] of group ARGV[1] that consumer ARGV[2]
#: still holds (XCLAIM JUSTID keeps their delivery count); returns those that another consumer
#: holds now, which are not taken back. Atomic, so that a claim cannot slip in between.
_KEEP_FRESH = """
local ours, lost = {}, {}
for i = 3, #ARGV do
    local row = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
    if row then
        if row[2] == ARGV[2] then ours[#ours + 1] = ARGV[i] else lost[#lost + 1] = ARGV[i] end
    end
end
if #ours > 0 then
    ours[#ours + 1] = 'JUSTID'
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(ours))
end
return lost
"""
#: Entries per call of _KEEP_FRESH (Lua's unpack() takes a few thousand at most).
_FRESH_PER_CALL = 1000

#: Removes, in one atomic step, the consumers of a group (other than ARGV[2]) that have
#: nothing pending and have been idle ARGV[3] ms or more; returns their names. Atomic so
#: that a consumer given an entry between the look and the removal keeps it.
_FORGET_IDLE_CONSUMERS = """
local removed = {}
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
    local info = {}
    for i = 1, #consumer, 2 do info[consumer[i]] = consumer[i + 1] end
    if info['name'] ~= ARGV[2] and tonumber(info['pending']) == 0
            and tonumber(info['idle']) >= tonumber(ARGV[3]) then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
        removed[#removed + 1] = info['name']
    end
end
return removed
"""


class HandlerTimeoutError(FastSSEError, TimeoutError):
    """A handler ran longer than ``handler_timeout`` and was cancelled (passed to
    ``on_error``; the entry is not acknowledged, so it is delivered again, or dead-lettered
    after ``max_deliveries``)."""


@dataclass
class RedisWorkerStats(ConsumerStats):
    """A :class:`RedisStreamConsumer`'s counts: those of its Consumer (received, handled,
    failed...) and those of the group's entries. Live: updated as the worker runs."""

    #: Entries acknowledged (XACK, as Redis counted them): handled, or failed and reported to
    #: ``on_error``.
    acknowledged: int = 0
    #: Entries claimed from other consumers of the group after ``claim_idle``.
    claimed: int = 0
    #: Entries moved to the dead-letter stream after ``max_deliveries`` deliveries.
    dead_lettered: int = 0
    #: Handler calls cancelled after ``handler_timeout`` (also counted in ``failed``).
    timed_out: int = 0
    #: Entries trimmed from the stream before the group read them, as last seen in Redis (a
    #: count for the whole group; needs Redis >= 7, else it stays 0).
    missed: int = 0


class RedisStreamConsumer:
    """Handle the entries of the Redis Stream ``stream`` as the member ``consumer`` of the
    consumer group ``group`` (created, from the stream's first entry, if missing).

    ``handler``, ``workers``, ``queue_size`` and ``on_error`` are those of
    :class:`fastsse.Consumer` (the queue holds entries read ahead of the handlers). Every
    entry is handled at least once while any worker of the group lives: at start this worker
    first handles what it had been given and not acknowledged (a restart under the same
    ``consumer`` name), and entries left pending by another consumer for ``claim_idle``
    seconds are claimed. While every worker lives no entry is handled twice: a worker keeps
    the entries it holds fresh every ``claim_idle / 3`` seconds, whatever its handlers and
    reader are doing (``claim_idle`` must exceed the time the worker's event loop may stall).
    A lost group (NOGROUP: Redis restarted without persistence) is created again from the
    stream's first entry, and the worker goes on.

    A handler that raises is reported to ``on_error`` and its entry acknowledged, as a
    Consumer counts it failed and goes on; to retry, add the entry again from ``on_error``.
    ``handler_timeout`` (seconds, async handlers only) cancels a handler that runs longer: it is
    reported to ``on_error`` as :class:`HandlerTimeoutError` and its entry is *not*
    acknowledged, so that it is delivered again. An entry delivered ``max_deliveries`` times
    without being acknowledged (its handler hung or killed the process) is moved to the stream
    ``dead_letter`` (default ``f"{stream}:dead"``, hash-tagged on a cluster) with its fields
    plus ``source-id`` (its ID) and ``deliveries``, and acknowledged, with a WARNING. An entry
    delivered before is taken alone, when a handler is free to start it, so entries that only
    came with a poison entry are not dead-lettered with it. Only a new entry's first delivery
    can be read ahead (into the queue of ``queue_size`` entries, default 256) and so count
    without a handler's attempt: an entry goes to the dead-letter stream after at least
    ``max_deliveries - 1`` attempts, or exactly ``max_deliveries`` with ``queue_size=0`` (an
    entry is read only when a handler is free for it).

    Consumers of the group idle ``forget_idle_consumers_after`` seconds (default a day) with
    nothing pending are removed from it (None: never). Entries trimmed from the stream before
    the group read them are counted in ``stats.missed`` (Redis >= 7), with a WARNING.

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
        max_deliveries: int = 5,
        dead_letter: str | None = None,
        handler_timeout: float | None = None,
        forget_idle_consumers_after: float | None = 86400.0,
        cluster: bool = False,
    ) -> None:
        for name, value in (("stream", stream), ("group", group), ("consumer", consumer)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        if not claim_idle > 0:
            raise ValueError(f"claim_idle must be > 0 seconds, got {claim_idle!r}")
        _check_count("workers", workers)
        _check_count("queue_size", queue_size, 0)
        _check_count("max_deliveries", max_deliveries)
        # On a cluster (a URL with cluster=True, or a cluster client given ready) the
        # dead-letter stream shares the stream's hash slot, since an entry is moved to it and
        # acknowledged in one MULTI.
        on_cluster = cluster or isinstance(redis, redis_asyncio().RedisCluster)
        if dead_letter is None:
            dead_letter = f"{hash_tag(stream)}:dead" if on_cluster else f"{stream}:dead"
        if not isinstance(dead_letter, str) or not dead_letter or dead_letter == stream:
            raise ValueError(
                f"dead_letter must be a non-empty stream name other than {stream!r}, "
                f"got {dead_letter!r}"
            )
        if on_cluster and key_slot(dead_letter) != key_slot(stream):
            raise ValueError(
                f"dead_letter {dead_letter!r} is not in the hash slot of {stream!r}: on a Redis "
                "Cluster an entry is moved to it and acknowledged in one MULTI, which needs "
                f"both in one slot (name it with the stream's hash tag: "
                f"{hash_tag(stream) + ':dead'!r})"
            )
        if handler_timeout is not None:
            if not handler_timeout > 0:
                raise ValueError(f"handler_timeout must be > 0 seconds, got {handler_timeout!r}")
            if not _is_async_callable(handler):
                raise TypeError(
                    "handler_timeout needs an async def handler: a plain function runs in a "
                    "thread, which cannot be cancelled"
                )
        if forget_idle_consumers_after is not None and not forget_idle_consumers_after > 0:
            raise ValueError(
                "forget_idle_consumers_after must be > 0 seconds or None, "
                f"got {forget_idle_consumers_after!r}"
            )
        self.stream, self.group, self.name = stream, group, consumer
        self.dead_letter = dead_letter
        self.claim_idle = float(claim_idle)
        self.max_deliveries = max_deliveries
        self.handler_timeout = handler_timeout
        self.forget_idle_consumers_after = forget_idle_consumers_after
        self._client, self._owns_client = connect(redis, cluster=cluster)
        self._errors = redis_errors()
        self._response_error: type[BaseException] = redis_asyncio().ResponseError
        self._workers = workers
        self._read_ahead = queue_size
        self._stats = RedisWorkerStats()
        self._handler = handler
        self._consumer = Consumer(
            _Source(self._batches),
            handler if handler_timeout is None else self._timed,
            workers=workers,
            # Never full: entries are read only when there is room (see _batches()).
            queue_size=workers + queue_size,
            overflow="block",
            on_error=on_error,
        )
        # The Consumer counts into our stats object, so one object holds every count.
        self._consumer._stats = self._stats
        self._consumer._settled = self._settled
        self._consumer._settled_one = self._settled_one
        self._entries: dict[int, bytes] = {}  # id() of an event in the Consumer -> entry ID
        self._held: set[bytes] = set()  # entry IDs given to the Consumer, not acknowledged
        self._timed_out: set[int] = set()  # id() of events whose handler timed out
        self._acks: list[bytes] = []
        self._ack_wanted: anyio.Event | None = None
        self._room_made: anyio.Event | None = None
        self._done = False
        self._forget_script: Any = None
        self._claim_cursor = "-"

    @property
    def stats(self) -> RedisWorkerStats:
        """Live counts: the Consumer's (received, handled, failed, ...) and the group's
        (acknowledged, claimed, dead_lettered, timed_out, missed)."""
        return self._stats

    @property
    def acked(self) -> int:
        """Entries acknowledged (``stats.acknowledged``)."""
        return self._stats.acknowledged

    @property
    def claimed(self) -> int:
        """Entries claimed from other consumers (``stats.claimed``)."""
        return self._stats.claimed

    def stop(self) -> None:
        """Read no more; ``run()`` returns once the handlers finish and are acknowledged."""
        self._consumer.stop(drain=True)

    async def run(self) -> None:
        """Handle the group's entries until :meth:`stop`."""
        await self._create_group()
        error: BaseException | None = None
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._ack_loop)
                tasks.start_soon(self._keep_fresh)
                tasks.start_soon(self._housekeeping)
                try:
                    await self._consumer.run()
                except Exception as raised:
                    error = raised  # raised below, not wrapped in the task group's group
                self._done = True
                self._wake_acker()
                tasks.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self._flush_acks()
                except self._errors as failure:
                    logger.warning(
                        "could not acknowledge %d entries: %s", len(self._acks), _says(failure)
                    )
                if self._owns_client:
                    await self._client.aclose()
        if error is not None:
            raise error

    async def _create_group(self) -> None:
        """The group, from the stream's first entry (``0``), unless it exists."""
        client = self._client
        # Redis >= 7 counts the entries the group reads (XINFO GROUPS' entries-read and lag)
        # from the value given here: those already trimmed when the group is made are not
        # counted as missed by it.
        entries_read: int | None = 0
        try:
            info: Any = await client.xinfo_stream(self.stream)
            added = info.get("entries-added")
            entries_read = None if added is None else int(added) - int(info["length"])
        except self._response_error:
            pass  # no stream yet
        try:
            try:
                await client.xgroup_create(
                    self.stream, self.group, id="0", mkstream=True, entries_read=entries_read
                )
            except self._response_error as error:
                if "ENTRIESREAD" not in str(error).upper() and "syntax" not in str(error):
                    raise
                # Redis < 7
                await client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except self._response_error as error:
            if not str(error).startswith("BUSYGROUP"):
                raise

    async def _group_lost(self, error: BaseException) -> None:
        await self._create_group()
        logger.warning(
            "Redis said %s: the consumer group %r of stream %r is gone (Redis restarted "
            "without persistence, or was restored from an older snapshot); created it again "
            "from the stream's first entry (0): the entries still in the stream are handled "
            "again (at least once)",
            _says(error),
            self.group,
            self.stream,
        )

    # -- reading: what the Consumer iterates --------------------------------------------------

    def _free_handlers(self) -> int:
        """How many more entries the handlers could start now."""
        stats = self._stats
        return self._workers - stats.queued - stats.in_flight

    async def _batches(self) -> AsyncGenerator[list[Event], None]:
        claim_every = self.claim_idle / 3
        block = max(1, min(_BLOCK_MS, int(claim_every * 1000)))
        next_claim = 0.0
        own_done = False  # what this consumer name was given before and never acknowledged
        failures = 0
        regrouped = False  # the group was lost and created again since the last success
        resume_at = max(1, (self._workers + self._read_ahead) // 4)
        while True:
            claiming = not own_done or time.monotonic() >= next_claim
            # An entry delivered before waits for a free handler (and reading stops meanwhile,
            # so claims are not put off by a backlog); new entries for a quarter of the queue
            # to be free: one read of many entries, not one per handler call.
            while self._free_handlers() + (0 if claiming else self._read_ahead) < (
                1 if claiming else resume_at
            ):
                self._room_made = anyio.Event()
                await self._room_made.wait()
            free = self._free_handlers()
            try:
                entries: list[Any] = []
                # Entries delivered before are taken one at a time, each as a handler is free
                # for it: if it kills the process, no other entry was delivered with it.
                if not own_done:
                    entries = await self._take_pending(own=True)
                    own_done = not entries
                elif claiming:
                    entries = await self._take_pending(own=False)
                    if entries:
                        self._stats.claimed += 1
                        logger.info(
                            "claimed entry %s, idle for %.1f s or more",
                            text(entries[0][0]),
                            self.claim_idle,
                        )
                    else:  # else more may be waiting: claim again as a handler is free
                        next_claim = time.monotonic() + claim_every
                if not entries and own_done:
                    entries = await self._read(free + self._read_ahead, block)
                failures = 0
                regrouped = False
            except self._response_error as error:
                failures += 1
                if not str(error).startswith("NOGROUP"):
                    await self._retry_later(failures, error)
                elif regrouped:  # created again, and lost again at once: not in a tight loop
                    await self._retry_later(failures, error, self._group_lost)
                else:
                    await self._retry_later(0, error, self._group_lost)
                    regrouped = True
                continue
            except self._errors as error:
                failures += 1
                await self._retry_later(failures, error)
                continue
            if entries:
                yield self._events(entries)

    async def _retry_later(
        self,
        failures: int,
        error: BaseException,
        repair: Callable[[BaseException], Any] | None = None,
    ) -> None:
        if repair is not None:
            try:
                await repair(error)
                if not failures:
                    return
            except self._errors as failure:
                error, failures = failure, max(1, failures)
        delay = min(2.0, 0.05 * 2**failures)
        logger.warning("Redis failed (%s); reading again in %.2f s", _says(error), delay)
        await anyio.sleep(delay)

    async def _read(self, count: int, block: int) -> list[Any]:
        reply: Any = await self._client.xreadgroup(
            self.group, self.name, {self.stream: ">"}, count=count, block=block
        )
        if not reply:
            return []
        # RESP2 gives [[stream, entries]], RESP3 {stream: [entries]}.
        entries: list[Any] = (
            next(iter(reply.values()))[0] if isinstance(reply, dict) else reply[0][1]
        )
        return entries

    async def _take_pending(self, *, own: bool) -> list[Any]:
        """A pending entry, now ours: one of this consumer's own (``own``), or one idle
        ``claim_idle`` in any consumer's hands; none if there is none. Those delivered
        ``max_deliveries`` times already go to the dead-letter stream on the way."""
        client = self._client
        min_idle = 0 if own else int(self.claim_idle * 1000)
        # Where the last look stopped: a long pending list is walked once, not once per entry.
        start = "-" if own else self._claim_cursor
        for _ in range(1000):  # bounded: each page moves ``start`` along the pending list
            rows: Any = await client.xpending_range(
                self.stream,
                self.group,
                min=start,
                max="+",
                count=_PENDING_PAGE,
                consumername=self.name if own else None,
                idle=None if own else min_idle,
            )
            for row in rows:
                entry_id = row["message_id"]
                start = "(" + str(text(entry_id))
                if entry_id in self._held:
                    continue
                if row["times_delivered"] >= self.max_deliveries:
                    await self._bury(entry_id, row["times_delivered"], min_idle)
                    continue
                # Only if still idle (another worker may have claimed it meanwhile).
                claimed: Any = await client.xclaim(
                    self.stream, self.group, self.name, min_idle, [entry_id]
                )
                claimed = [entry for entry in claimed if entry[1] is not None]
                if claimed:
                    if not own:
                        self._claim_cursor = start
                    return claimed  # type: ignore[no-any-return]
            if len(rows) < _PENDING_PAGE:
                break
        if not own:
            self._claim_cursor = "-"
        return []

    async def _bury(self, entry_id: bytes, deliveries: int, min_idle: int) -> None:
        """Move a pending entry to the dead-letter stream and acknowledge it."""
        client = self._client
        # Ours first, if still idle: of racing workers only one buries it. JUSTID keeps its
        # delivery count.
        won: Any = await client.xclaim(
            self.stream, self.group, self.name, min_idle, [entry_id], justid=True
        )
        if not won:
            return
        found: Any = await client.xrange(self.stream, entry_id, entry_id)
        if not found:
            await client.xack(self.stream, self.group, entry_id)
            logger.warning(
                "entry %s of %r was delivered %d times without being acknowledged, and is no "
                "longer in the stream: acknowledged, nothing to move to %r",
                text(entry_id),
                self.stream,
                deliveries,
                self.dead_letter,
            )
            return
        fields = dict(found[0][1])
        fields.update({"source-id": entry_id, "deliveries": deliveries})
        # One transaction: the entry is in the dead-letter stream once and acknowledged, or
        # neither (then it is still ours, pending, and buried again later).
        async with client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_letter, fields)
            pipe.xack(self.stream, self.group, entry_id)
            await pipe.execute()
        self._stats.dead_lettered += 1
        logger.warning(
            "entry %s of %r was delivered %d times without being acknowledged "
            "(max_deliveries=%d): moved to the dead-letter stream %r and acknowledged",
            text(entry_id),
            self.stream,
            deliveries,
            self.max_deliveries,
            self.dead_letter,
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

    async def _timed(self, event: Event) -> None:
        """The handler, cancelled after ``handler_timeout`` seconds."""
        with anyio.move_on_after(self.handler_timeout) as scope:
            await cast("Awaitable[object]", self._handler(event))
        if scope.cancelled_caught:
            self._timed_out.add(id(event))
            self._stats.timed_out += 1
            raise HandlerTimeoutError(
                f"the handler ran longer than handler_timeout={self.handler_timeout} s on "
                f"entry {text(self._entries.get(id(event)))} (id={event.id!r}): cancelled, "
                "not acknowledged"
            )

    # -- keeping held entries fresh, housekeeping ---------------------------------------------

    async def _keep_fresh(self) -> None:
        """Every ``claim_idle / 3`` s, reset the idle time of the entries in our hands, so
        that no live worker claims them. A task of its own: neither a full queue nor a slow
        handler holds it up."""
        every = self.claim_idle / 3
        script = self._client.register_script(_KEEP_FRESH)
        while True:
            await anyio.sleep(every)
            held: list[Any] = list(self._held)
            try:
                for start in range(0, len(held), _FRESH_PER_CALL):
                    lost: Any = await script(
                        keys=[self.stream],
                        args=[self.group, self.name, *held[start : start + _FRESH_PER_CALL]],
                    )
                    if lost:
                        self._lost(lost)
            except self._errors as error:
                logger.warning(
                    "could not keep %d held entries fresh (%s); trying again in %.2f s",
                    len(held),
                    _says(error),
                    every,
                )

    def _lost(self, lost: Sequence[bytes]) -> None:
        """Entries we hold that another consumer claimed: this worker was unresponsive for
        ``claim_idle``. Not taken back (that one handles them too); no longer kept fresh."""
        self._held.difference_update(lost)
        logger.warning(
            "%d entries this worker holds were claimed by another consumer (%s...): this "
            "worker did not keep them fresh for claim_idle=%.1f s (its event loop stalled?), "
            "so they are handled twice",
            len(lost),
            text(lost[0]),
            self.claim_idle,
        )

    async def _housekeeping(self) -> None:
        """Forget long-idle consumers; count entries trimmed before the group read them."""
        every = _HOUSEKEEPING_EVERY
        if self.forget_idle_consumers_after is not None:
            every = min(every, self.forget_idle_consumers_after / 2)
        while True:
            try:
                await self._count_missed()
                if self.forget_idle_consumers_after is not None:
                    await self._forget_idle_consumers(self.forget_idle_consumers_after)
            except self._errors as error:
                logger.debug("housekeeping failed: %s", _says(error))
            await anyio.sleep(every)

    async def _forget_idle_consumers(self, after: float) -> None:
        if self._forget_script is None:
            self._forget_script = self._client.register_script(_FORGET_IDLE_CONSUMERS)
        removed: Any = await self._forget_script(
            keys=[self.stream], args=[self.group, self.name, math.ceil(after * 1000)]
        )
        if removed:
            logger.info(
                "removed %d consumers idle %.0f s or more with nothing pending from group %r: %s",
                len(removed),
                after,
                self.group,
                ", ".join(str(text(name)) for name in removed),
            )

    async def _count_missed(self) -> None:
        """``stats.missed``: the group's lag (Redis >= 7: entries added to the stream that the
        group has not read) less the entries still in the stream after its position."""
        client = self._client
        async with client.pipeline(transaction=True) as pipe:
            pipe.xinfo_groups(self.stream)
            pipe.xinfo_stream(self.stream)
            groups, stream = await pipe.execute()
        group = next((g for g in groups if text(g["name"]) == self.group), None)
        if group is None or group.get("lag") is None:
            return  # Redis < 7, or it cannot tell (entries deleted after the group's position)
        lag = int(group["lag"])
        position = _parse_id(group["last-delivered-id"])
        last = _parse_id(stream["last-generated-id"])
        first = stream.get("first-entry")
        if lag == 0 or position == last:
            unread = 0
        elif first is None or _parse_id(first[0]) > position:
            unread = int(stream["length"])
        elif lag <= _MAX_BACKLOG_COUNTED:
            after: Any = await client.xrange(
                self.stream,
                "(" + str(text(group["last-delivered-id"])),
                str(text(stream["last-generated-id"])),
                count=lag + 1,
            )
            unread = len(after)
        else:
            return  # a long backlog: counted at a later look
        missed = lag - unread
        if missed > self._stats.missed:
            logger.warning(
                "%d entries of %r were trimmed before the group %r read them (%d in all): "
                "the stream's MAXLEN is too short for the workers' pace",
                missed - self._stats.missed,
                self.stream,
                self.group,
                missed,
            )
            self._stats.missed = missed

    # -- acknowledging ------------------------------------------------------------------------

    def _settled(self, first: int, events: Sequence[Event]) -> None:
        for event in events:
            self._settled_one(first, event)

    def _settled_one(self, seq: int, event: Event) -> None:
        entry_id = self._entries.pop(id(event))
        if self._timed_out and id(event) in self._timed_out:
            # Not acknowledged, no longer kept fresh: claimed again after claim_idle, so
            # that it counts one more delivery.
            self._timed_out.discard(id(event))
            self._held.discard(entry_id)
        else:
            self._acks.append(entry_id)
            self._wake_acker()
        room = self._room_made
        if room is not None:
            self._room_made = None
            room.set()

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
                logger.warning("could not acknowledge entries (%s); trying again", _says(error))
                await anyio.sleep(0.1)

    async def _flush_acks(self) -> None:
        acks, self._acks = self._acks, []
        if not acks:
            return
        try:
            # What Redis acknowledged: fewer when the group was lost meanwhile (XACK answers
            # 0 for an entry no longer pending; the group made anew delivers it again).
            acknowledged: Any = await self._client.xack(self.stream, self.group, *acks)
        except BaseException:
            self._acks[:0] = acks  # acknowledged later, or claimed again: never lost
            raise
        self._held.difference_update(acks)
        self._stats.acknowledged += int(acknowledged)


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


def _says(error: BaseException) -> str:
    """What a Redis error says (redis-py's repr hides the server's message)."""
    return str(error) or type(error).__name__


def _parse_id(value: bytes | str) -> tuple[int, int]:
    milliseconds, _, sequence = str(text(value)).partition("-")
    return int(milliseconds), int(sequence or 0)
