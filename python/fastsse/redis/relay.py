"""The relay: an SSE feed into a Redis Stream, exactly once and in order (DESIGN.md section 9).

Each event becomes an entry of the Redis Stream ``KEY`` with the fields ``id``, ``event``,
``data`` (and ``retry`` when the event has one). Two keys beside it, in the stream's hash slot
(``{KEY}``, so that all three live on one node of a Redis Cluster):

- ``{KEY}:lease``: the token of the one relay allowed to write, with a TTL it renews (a
  redis-py ``Lock``);
- ``{KEY}:last-event-id``: the ID of the last event appended, where the feed resumes.

A batch of events is appended by one Lua script (``append.lua``), atomic in Redis, which first
checks that the caller's token still holds the lease (fencing: a relay paused past its lease
cannot write) and that the checkpoint is the one the batch starts from (a call retried after
its reply was lost finds its batch already in and appends nothing), then adds the entries and
moves the checkpoint. Whatever fails (the relay, the feed, Redis), a relay starts a new *term*:
it takes the lease, reads the checkpoint and opens the feed from there, so every event lands
once. The checkpoint only moves forward: a feed without ids, or an id that would move it back,
stops the relay (:class:`FeedWithoutIdsError`, :class:`CheckpointBackwardsError`).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from fastsse._errors import FastSSEError
from fastsse._fastsse import Event
from fastsse._io.stream import AsyncEventStream
from fastsse._policy import Retry
from fastsse.protocol import redact
from fastsse.redis.client import connect, redis_asyncio, redis_errors, text

if TYPE_CHECKING:
    from fastsse.redis.client import AnyRedis

__all__ = [
    "CheckpointBackwardsError",
    "FeedWithoutIdsError",
    "Relay",
    "RelayError",
    "RelayStats",
    "checkpoint_key",
    "lease_key",
]

logger = logging.getLogger("fastsse.relay")

#: Events appended by one script call at most: a script blocks Redis while it runs.
_MAX_APPEND = 256

_APPEND = importlib.resources.files("fastsse.redis").joinpath("append.lua").read_text("utf-8")


class RelayError(FastSSEError):
    """The relay stopped for good: the feed cannot be relayed exactly once."""


class FeedWithoutIdsError(RelayError):
    """The feed's events carry no id, so a relay could not resume it without replaying it."""


class CheckpointBackwardsError(RelayError):
    """An event's id would move the checkpoint back (an ``id:`` reset to empty, an event
    without an id of its own, which repeats the last one, or a lower decimal id); the events
    before it are appended, nothing after."""


def hash_tag(stream: str) -> str:
    """The part of the key names that places them in ``stream``'s hash slot."""
    opening = stream.find("{")
    if opening != -1:
        closing = stream.find("}", opening + 1)
        if closing > opening + 1:
            return stream  # the stream's own hash tag places every key that starts with it
    if "{" in stream or "}" in stream:
        raise ValueError(
            f"stream {stream!r} has braces but no hash tag: name it without braces, or with a "
            "non-empty {tag} that places it and its relay's keys in one hash slot"
        )
    return f"{{{stream}}}"  # "{feed}" hashes as "feed" does: the stream's own slot


def lease_key(stream: str) -> str:
    """The key of the relay's lease for ``stream``: ``{stream}:lease`` (``stream:lease``
    when the name has a hash tag already), in the stream's hash slot."""
    return f"{hash_tag(stream)}:lease"


def checkpoint_key(stream: str) -> str:
    """The key of the relay's checkpoint for ``stream``: ``{stream}:last-event-id``
    (``stream:last-event-id`` when the name has a hash tag already), in its hash slot."""
    return f"{hash_tag(stream)}:last-event-id"


def _legacy_checkpoint_key(stream: str) -> str:
    # Where relays before the hash-tagged names kept it: still read, once, on an upgrade.
    return f"{stream}:last-event-id"


def _check_ids(previous: str, events: Sequence[Event]) -> tuple[int, RelayError | None]:
    """How many of ``events`` move the checkpoint forward from ``previous``, and the error
    that stops the relay at the first one that would not."""
    for index, event in enumerate(events):
        current = event.id
        if current and current != previous:
            if not (previous.isdecimal() and current.isdecimal()) or int(current) > int(previous):
                previous = current
                continue
            why = f"its id {current} is lower than {previous}"
        elif not previous:
            return index, FeedWithoutIdsError(
                "the feed's events carry no id: the relay needs one on every event, because "
                "it resumes the feed after any failure from the id it appended last "
                "(Last-Event-ID), and that is what keeps the Redis Stream exactly once"
            )
        elif current:
            why = (
                f"its id {current!r} is that of the event before it (an event without an "
                "id: field carries the last one)"
            )
        else:
            why = f"its id is empty (an id: reset) after {previous!r}"
        return index, CheckpointBackwardsError(
            f"an event would move the relay's checkpoint back: {why}; the relay stopped at "
            f"{previous!r}, since a resume from there is the only one that neither replays "
            "nor skips events"
        )
    return len(events), None


@dataclass
class RelayStats:
    """Counters of one relay, across its terms."""

    #: Events appended to the Redis Stream by this relay.
    events: int = 0
    #: Feed reconnections (the stream's own, summed over the terms).
    reconnects: int = 0
    #: Terms as the lease holder.
    leases: int = 0
    #: Leases lost to another relay (expired while this one was paused or cut off).
    leases_lost: int = 0
    #: Failed Redis calls (each ends a term; the next one resumes from the checkpoint).
    redis_errors: int = 0
    #: Appends found already in Redis and not made again: a call redis-py retried after the
    #: reply of the first one was lost.
    already_appended: int = 0


class _LeaseLost(Exception):
    pass


class _Stale(Exception):
    pass


class Relay:
    """Append the events of the feed at ``url`` to the Redis Stream ``stream``.

    ``redis`` is a URL or a client, ``redis.asyncio.Redis`` or, for a Redis Cluster,
    ``redis.asyncio.cluster.RedisCluster``; ``cluster=True`` makes a cluster client of a URL
    (naming any node). The relay's keys share ``stream``'s hash slot (:func:`lease_key`,
    :func:`checkpoint_key`). Several relays may run for the same stream: one holds the lease
    (a token with a TTL of ``lease_ttl`` seconds, renewed every third of it) and writes; the
    others wait and take over within ``lease_ttl`` (plus a poll interval) of its death.
    ``maxlen`` caps the stream's length (approximately, as ``XADD MAXLEN ~``). ``headers`` go
    with every feed request; ``retry`` is the feed's reconnect policy. The feed must give
    every event an ID and honour Last-Event-ID: that is what a resume after a crash sends.
    The checkpoint only moves forward: ids that are decimal integers must increase, others
    must change from event to event.

    ``await relay.run()`` returns when the feed ends (HTTP 204), releasing the lease, or after
    :meth:`stop`. It raises :class:`FeedWithoutIdsError` for a feed whose events carry no id,
    :class:`CheckpointBackwardsError` when an id would move the checkpoint back (the events
    before it are appended), and the feed's error when it fails for good (an HTTP 404, say).
    """

    def __init__(
        self,
        url: str,
        *,
        redis: str | AnyRedis,
        stream: str,
        cluster: bool = False,
        lease_ttl: float = 5.0,
        maxlen: int | None = None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        retry: Retry | None = None,
        log_interval: float = 10.0,
    ) -> None:
        if not isinstance(stream, str) or not stream:
            raise ValueError(f"stream must be a non-empty key, got {stream!r}")
        if not (isinstance(lease_ttl, (int, float)) and math.isfinite(lease_ttl)):
            raise ValueError(f"lease_ttl must be a number of seconds, got {lease_ttl!r}")
        if lease_ttl < 0.1:
            raise ValueError(f"lease_ttl must be at least 0.1 s, got {lease_ttl!r}")
        if not log_interval > 0:
            raise ValueError(f"log_interval must be > 0 seconds, got {log_interval!r}")
        if maxlen is not None and (isinstance(maxlen, bool) or maxlen < 1):
            raise ValueError(f"maxlen must be a positive int or None, got {maxlen!r}")
        self.url = url
        self.stream = stream
        self.lease_ttl = float(lease_ttl)
        self.maxlen = maxlen
        self._headers = headers
        self._retry = retry
        self._log_interval = log_interval
        self._keys = [stream, lease_key(stream), checkpoint_key(stream)]
        self._client, self._owns_client = connect(redis, cluster=cluster)
        #: The Redis URL, whose password a message never shows (see ``_describe``).
        self._redis_url = redis if isinstance(redis, str) else ""
        self._append = self._client.register_script(_APPEND)
        # The lease is redis-py's Lock with this relay's name as its token (the fenced append
        # compares the lease's value with it); one object across terms, not bound to a thread.
        self._lease = self._client.lock(self._keys[1], timeout=lease_ttl, thread_local=False)
        # Unique per relay process, readable by an operator: which machine and process leads.
        self._name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._token: str | None = None  # the lease's token while this relay holds it
        self._leased_at = 0.0
        self._logged = (time.monotonic(), 0)  # when progress was last logged, and the count
        self._stopping = False
        self._scope: anyio.CancelScope | None = None
        self.stats = RelayStats()

    @property
    def name(self) -> str:
        """The relay's identity, the value of the lease key while it holds the lease."""
        return self._name

    def stop(self) -> None:
        """End :meth:`run` (its lease is released); safe from a signal handler's task."""
        self._stopping = True
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
        """Relay until the feed ends or :meth:`stop`; Redis and feed failures are retried.

        Raises what ends the feed for good (an HTTP error the stream does not retry)."""
        errors = redis_errors()
        failures = 0
        try:
            with anyio.CancelScope() as self._scope:
                while not self._stopping:
                    try:
                        await self._wait_for_lease()
                        failures = 0
                        if await self._term():
                            logger.info(
                                "the feed ended (HTTP 204): %d events relayed by this relay",
                                self.stats.events,
                            )
                            return
                    except _LeaseLost as lost:
                        self.stats.leases_lost += 1
                        logger.warning("lease lost: %s; standing by", lost)
                    except _Stale:
                        logger.warning("the checkpoint moved under this relay; resuming from it")
                    except errors as error:
                        self.stats.redis_errors += 1
                        failures += 1
                        delay = min(2.0, 0.05 * 2**failures)
                        logger.warning(
                            "Redis failed (%s); trying again in %.2f s",
                            self._describe(error),
                            delay,
                        )
                        await anyio.sleep(delay)
        finally:
            self._scope = None
            # Shielded, but bounded: an unreachable Redis must not keep the relay from exiting
            # (the lease then expires by itself).
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.lease_ttl):
                await self._give_up_lease()
                if self._owns_client:
                    await self._client.aclose()

    def _describe(self, error: BaseException) -> str:
        """A Redis error for the log: its type and message (redis-py 8's repr hides the
        message), and the Redis URL's password, should the message quote it, as ``[secure]``."""
        return redact(f"{type(error).__name__}: {error}", self._redis_url)

    # -- the lease ----------------------------------------------------------------------------

    async def _wait_for_lease(self) -> None:
        """Take the lease, polling while another relay holds it."""
        lock_error = redis_asyncio().lock.LockError
        poll = min(0.2, self.lease_ttl / 4)
        holder: str | None = None
        while True:
            self._leased_at = time.monotonic()
            taken = await self._lease.acquire(blocking=False, token=self._name)
            if not taken:
                # After a term that ended on a Redis error or a late renewal, the lease may
                # still hold this relay's name: then it is this relay's (the error is raised
                # without a round trip by a relay that never held it).
                with contextlib.suppress(lock_error):
                    taken = await self._lease.reacquire()
            if taken:
                self._token = self._name
                self.stats.leases += 1
                logger.info("lease acquired by %s (TTL %.1f s)", self._name, self.lease_ttl)
                return
            current = text(await self._client.get(self._keys[1]))
            if current != holder:
                holder = current
                logger.info("standing by: the lease is held by %s", current)
            await anyio.sleep(poll)

    async def _keep_lease(self, expired: anyio.Event) -> None:
        """Renew the lease every third of its TTL; set ``expired`` when it is gone."""
        lock_error = redis_asyncio().lock.LockError
        ttl = self.lease_ttl
        # The lease surely lasts until then (measured from before the request that set it).
        valid_until = self._leased_at + ttl
        while True:
            await anyio.sleep(ttl / 3)
            asked = time.monotonic()
            try:
                await self._lease.reacquire()  # the TTL again, if the token is still ours
            except lock_error:
                break
            except Exception as error:  # Redis unreachable: the lease may still stand
                logger.warning("could not renew the lease: %s", self._describe(error))
                if time.monotonic() >= valid_until:
                    break
                continue
            valid_until = asked + ttl
        expired.set()

    async def _give_up_lease(self) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        try:
            await self._lease.release()
            logger.info("lease released by %s", token)
        except redis_asyncio().lock.LockError:
            pass  # no longer ours: another relay has it
        except Exception as error:
            logger.warning(
                "could not release the lease (it expires by itself): %s", self._describe(error)
            )

    # -- one term as the leader ---------------------------------------------------------------

    async def _term(self) -> bool:
        """Relay from the checkpoint while holding the lease; True when the feed ended."""
        checkpoint = await self._load_checkpoint()
        logger.info("resuming the feed after event id %r", checkpoint)
        expired = anyio.Event()
        feed = AsyncEventStream(
            self.url, headers=self._headers, last_event_id=checkpoint, retry=self._retry
        )
        error: Exception | None = None
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._keep_lease, expired)
                tasks.start_soon(self._watch, expired, tasks.cancel_scope)
                try:
                    async for batch in feed.batches():
                        forward, stop = _check_ids(checkpoint, batch)
                        for start in range(0, forward, _MAX_APPEND):
                            part = batch[start : min(start + _MAX_APPEND, forward)]
                            checkpoint = await self._append_batch(checkpoint, part)
                        if stop is not None:
                            raise stop
                except Exception as raised:
                    error = raised  # raised below: a task group would wrap it in a group
                tasks.cancel_scope.cancel()
        finally:
            self.stats.reconnects += feed.stats.reconnects
            with anyio.CancelScope(shield=True):
                await feed.aclose()
        if error is not None:
            raise error
        if expired.is_set():
            self._token = None
            raise _LeaseLost("it was not renewed in time")
        return True

    async def _load_checkpoint(self) -> str:
        checkpoint = text(await self._client.get(self._keys[2]))
        if checkpoint is None and self._keys[2] != _legacy_checkpoint_key(self.stream):
            legacy = text(await self._client.get(_legacy_checkpoint_key(self.stream)))
            if legacy:
                # NX: a relay of this version that wrote meanwhile knows better.
                await self._client.set(self._keys[2], legacy, nx=True)
                logger.info(
                    "the checkpoint moved from %s to %s",
                    _legacy_checkpoint_key(self.stream),
                    self._keys[2],
                )
                checkpoint = text(await self._client.get(self._keys[2]))
        return checkpoint or ""

    @staticmethod
    async def _watch(expired: anyio.Event, scope: anyio.CancelScope) -> None:
        await expired.wait()
        scope.cancel()

    async def _append_batch(self, checkpoint: str, events: Sequence[Event]) -> str:
        """Append ``events`` and move the checkpoint, atomically; returns the new one."""
        last = events[-1].id
        args: list[Any] = [self._token, self.maxlen or 0, checkpoint, last]
        for event in events:
            fields: list[str] = ["id", event.id, "event", event.event, "data", event.data]
            if event.retry is not None:
                fields += ["retry", str(event.retry)]
            args.append(len(fields))
            args.extend(fields)
        try:
            appended = await self._append(self._keys, args)
        except redis_asyncio().ResponseError as error:
            message = str(error)
            if message.startswith("FENCED"):
                self._token = None
                raise _LeaseLost("another relay holds it; the append was refused") from None
            if message.startswith("STALE"):
                raise _Stale from None
            raise
        if appended == -1:
            self.stats.already_appended += 1
            logger.info(
                "%d events up to id %r were already appended (a call retried after its reply "
                "was lost): not appended again",
                len(events),
                last,
            )
        self.stats.events += len(events)
        self._log_progress()
        return last

    def _log_progress(self) -> None:
        now, events = time.monotonic(), self.stats.events
        if now - self._logged[0] >= self._log_interval:
            logger.info(
                "relayed %d events (%.0f/s), feed reconnects %d",
                events,
                (events - self._logged[1]) / max(now - self._logged[0], 1e-9),
                self.stats.reconnects,
            )
            self._logged = (now, events)
