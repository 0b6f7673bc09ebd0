"""The relay: an SSE feed into a Redis Stream, exactly once and in order (DESIGN.md section 9).

Each event becomes an entry of the Redis Stream ``KEY`` with the fields ``id``, ``event``,
``data`` (and ``retry`` when the event has one). Three keys beside it:

- ``KEY:lease``: the token of the one relay allowed to write, with a TTL it renews;
- ``KEY:last-event-id``: the ID of the last event appended, where the feed resumes.

A batch of events is appended by one Lua script, atomic in Redis, which first checks that the
caller's token still holds the lease (fencing: a relay paused past its lease cannot write)
and that the checkpoint is the one the caller resumed from (so a retried or replayed append
is refused instead of written twice), then adds the entries and moves the checkpoint.
Whatever fails (the relay, the feed, Redis), a relay starts a new *term*: it takes the lease,
reads the checkpoint and opens the feed from there, so every event lands once.
"""

from __future__ import annotations

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

from fastsse._fastsse import Event
from fastsse._io.stream import AsyncEventStream
from fastsse._policy import Retry
from fastsse.redis.client import connect, redis_asyncio, text

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Relay", "RelayStats", "checkpoint_key", "lease_key"]

logger = logging.getLogger("fastsse.relay")

#: Events appended by one script call at most: a script blocks Redis while it runs.
_MAX_APPEND = 256

# KEYS: stream, lease, checkpoint. ARGV: token, maxlen (0: none), the checkpoint expected now,
# the new checkpoint, then per event: its field count (2 per field) and its fields.
_APPEND = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('FENCED this relay does not hold the lease')
end
local current = redis.call('GET', KEYS[3])
if current == false then current = '' end
if current ~= ARGV[3] then
  return redis.error_reply('STALE the checkpoint moved since this relay read it')
end
local maxlen = tonumber(ARGV[2])
local i = 5
local appended = 0
while i <= #ARGV do
  local count = tonumber(ARGV[i])
  local args = {KEYS[1]}
  if maxlen > 0 then
    args[#args + 1] = 'MAXLEN'
    args[#args + 1] = '~'
    args[#args + 1] = maxlen
  end
  args[#args + 1] = '*'
  for j = i + 1, i + count do args[#args + 1] = ARGV[j] end
  redis.call('XADD', unpack(args))
  i = i + count + 1
  appended = appended + 1
end
redis.call('SET', KEYS[3], ARGV[4])
return appended
"""
# Taken when free, or kept when this relay already holds it (a term that ended on a Redis
# error): 1, else the holder's name.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return holder
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_key(stream: str) -> str:
    return f"{stream}:lease"


def checkpoint_key(stream: str) -> str:
    return f"{stream}:last-event-id"


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


class _LeaseLost(Exception):
    pass


class _Stale(Exception):
    pass


class Relay:
    """Append the events of the feed at ``url`` to the Redis Stream ``stream``.

    ``redis`` is a URL or a ``redis.asyncio.Redis`` client. Several relays may run for the
    same stream: one holds the lease (a token with a TTL of ``lease_ttl`` seconds, renewed
    every third of it) and writes; the others wait and take over within ``lease_ttl`` (plus
    a poll interval) of its death. ``maxlen`` caps the stream's length (approximately, as
    ``XADD MAXLEN ~``). ``headers`` go with every feed request; ``retry`` is the feed's
    reconnect policy. The feed must give every event an ID and honour Last-Event-ID:
    that is what a resume after a crash sends.

    ``await relay.run()`` returns when the feed ends (HTTP 204), releasing the lease, or after
    :meth:`stop`.
    """

    def __init__(
        self,
        url: str,
        *,
        redis: str | Redis,
        stream: str,
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
        self._client, self._owns_client = connect(redis)
        self._keys = [stream, lease_key(stream), checkpoint_key(stream)]
        self._append = self._client.register_script(_APPEND)
        self._acquire = self._client.register_script(_ACQUIRE)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
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
        errors = redis_asyncio().RedisError
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
                    except (errors, OSError) as error:
                        self.stats.redis_errors += 1
                        failures += 1
                        delay = min(2.0, 0.05 * 2**failures)
                        logger.warning(
                            "Redis failed (%s: %s); trying again in %.2f s",
                            type(error).__name__,
                            error,
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

    # -- the lease ----------------------------------------------------------------------------

    async def _wait_for_lease(self) -> None:
        """Take the lease, polling while another relay holds it."""
        ttl_ms = int(self.lease_ttl * 1000)
        poll = min(0.2, self.lease_ttl / 4)
        holder: str | None = None
        while True:
            self._leased_at = time.monotonic()
            answer = await self._acquire(self._keys[1:2], [self._name, ttl_ms])
            if answer == 1:
                self._token = self._name
                self.stats.leases += 1
                logger.info("lease acquired by %s (TTL %.1f s)", self._name, self.lease_ttl)
                return
            current = text(answer)
            if current != holder:
                holder = current
                logger.info("standing by: the lease is held by %s", current)
            await anyio.sleep(poll)

    async def _keep_lease(self, expired: anyio.Event) -> None:
        """Renew the lease every third of its TTL; set ``expired`` when it is gone."""
        token, ttl = self._token, self.lease_ttl
        assert token is not None
        # The lease surely lasts until then (measured from before the request that set it).
        valid_until = self._leased_at + ttl
        while True:
            await anyio.sleep(ttl / 3)
            asked = time.monotonic()
            try:
                renewed = await self._renew(self._keys[1:2], [token, int(ttl * 1000)])
            except Exception as error:  # Redis unreachable: the lease may still stand
                logger.warning("could not renew the lease: %r", error)
                if time.monotonic() >= valid_until:
                    break
                continue
            if not renewed:
                break
            valid_until = asked + ttl
        expired.set()

    async def _give_up_lease(self) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        try:
            if await self._release(self._keys[1:2], [token]):
                logger.info("lease released by %s", token)
        except Exception as error:
            logger.warning("could not release the lease (it expires by itself): %r", error)

    # -- one term as the leader ---------------------------------------------------------------

    async def _term(self) -> bool:
        """Relay from the checkpoint while holding the lease; True when the feed ended."""
        checkpoint = text(await self._client.get(self._keys[2])) or ""
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
                        for start in range(0, len(batch), _MAX_APPEND):
                            part = batch[start : start + _MAX_APPEND]
                            checkpoint = await self._append_batch(checkpoint, part)
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
            await self._append(self._keys, args)
        except redis_asyncio().ResponseError as error:
            message = str(error)
            if message.startswith("FENCED"):
                self._token = None
                raise _LeaseLost("another relay holds it; the append was refused") from None
            if message.startswith("STALE"):
                raise _Stale from None
            raise
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
