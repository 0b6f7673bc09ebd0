"""Durable checkpoints: where a consumer resumes after its own process dies (DESIGN.md section 9).

A checkpoint stores one last event ID under a key. ``Consumer(stream, handler,
checkpoint=...)`` loads it to resume a stream that was given no ID, and commits, in batches,
the ID of the last event such that it and every event before it has been handled: at least
once across a crash, never a skipped event.

The interface is async only: its user, the Consumer, runs in an event loop, and a checkpoint
is I/O (a disk write, a network round trip) that must not stall the loop. ``SQLiteCheckpoint``
runs its blocking calls in a worker thread; ``fastsse.redis.RedisCheckpoint`` uses redis-py's
asyncio client.
"""

from __future__ import annotations

import abc
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.to_thread

from fastsse._fastsse import Event

__all__ = ["Checkpoint", "SQLiteCheckpoint"]

logger = logging.getLogger("fastsse")


class Checkpoint(abc.ABC):
    """One last event ID, stored under a key, that survives the process.

    Implementations make :meth:`commit` atomic: after a crash at any moment, :meth:`load`
    returns the ID of a completed commit (the last one, or for a store that trades
    durability for speed an earlier one), never a torn or invalid value. An earlier one only
    means events are handled again, never skipped.
    """

    @abc.abstractmethod
    async def load(self) -> str | None:
        """The committed ID, or None when nothing was ever committed under the key."""

    @abc.abstractmethod
    async def commit(self, last_event_id: str) -> None:
        """Store ``last_event_id`` under the key, replacing the previous one."""

    async def aclose(self) -> None:  # noqa: B027 - optional: most stores hold a connection
        """Release what the checkpoint holds (connections); it can be reopened by using it."""

    async def __aenter__(self) -> Checkpoint:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class SQLiteCheckpoint(Checkpoint):
    """A checkpoint in an SQLite file (the embedded default): one row per key in the table
    ``fastsse_checkpoints``; several keys and several processes may share a file.

    The database is in WAL mode and each commit is one transaction, so a crash at any moment
    (``kill -9`` mid-write included) leaves the last completed commit. ``synchronous=NORMAL``
    makes a commit survive the process dying at once; after a power loss the last commits may
    be lost (never the file), which only replays events. Every call runs in a worker thread,
    one at a time, so the event loop never waits on the disk.
    """

    def __init__(self, path: str | Path, key: str, *, timeout: float = 30.0) -> None:
        if not isinstance(key, str):
            raise TypeError(f"key must be a str, got {key!r}")
        self.path = Path(path)
        self.key = key
        self._timeout = timeout
        self._connection: sqlite3.Connection | None = None
        # One connection, used from whichever worker thread runs the call, one call at a time.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteCheckpoint({str(self.path)!r}, {self.key!r})"

    async def load(self) -> str | None:
        return await anyio.to_thread.run_sync(self._load)

    async def commit(self, last_event_id: str) -> None:
        if not isinstance(last_event_id, str):
            raise TypeError(f"last_event_id must be a str, got {last_event_id!r}")
        await anyio.to_thread.run_sync(self._commit, last_event_id)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._close)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            # isolation_level=None: each statement is its own transaction, committed at once.
            connection = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS fastsse_checkpoints ("
                    "key TEXT PRIMARY KEY, last_event_id TEXT NOT NULL, updated_at REAL NOT NULL)"
                )
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def _load(self) -> str | None:
        with self._lock:
            row = (
                self._connect()
                .execute("SELECT last_event_id FROM fastsse_checkpoints WHERE key = ?", (self.key,))
                .fetchone()
            )
        return None if row is None else str(row[0])

    def _commit(self, last_event_id: str) -> None:
        with self._lock:
            self._connect().execute(
                "INSERT INTO fastsse_checkpoints (key, last_event_id, updated_at) "
                "VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "last_event_id = excluded.last_event_id, updated_at = excluded.updated_at",
                (self.key, last_event_id, time.time()),
            )

    def _close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.close()


#: In ``Watermark.busy``: the worker holds no unsettled event.
IDLE = sys.maxsize


class Watermark:
    """Which event may be committed: the last one such that it and every event before it in
    stream order is settled (handled, or failed and reported).

    Workers finish out of order. The Consumer numbers the events as they leave its queue
    (stream order), appends each to :attr:`history` and keeps in ``busy[worker]`` the number
    of the first event that worker may hold unsettled (:data:`IDLE` when it waits for work).
    Every event numbered below the smallest of ``busy`` is settled, so the watermark is the
    event just before it. That costs a few list operations per event and no call; the search is made
    only when a commit is due. An event that never settles (a cancelled handler) keeps its
    number in ``busy``, holding the watermark back, so a restart handles it again.
    """

    def __init__(self, workers: int) -> None:
        self.busy = [IDLE] * workers
        #: Events taken, from number ``_base`` on (pruned at each :meth:`event`).
        self.history: list[Event] = []
        self._base = 0

    def event(self, taken: int) -> Event | None:
        """The watermark event (None before any), given the count of events taken so far."""
        low = min(self.busy)  # the first event not settled
        if low == IDLE:
            low = taken
        settled = low - self._base  # how many of ``history`` are settled
        if settled <= 0:
            return None
        history = self.history
        event = history[settled - 1]
        del history[: settled - 1]  # the watermark event stays first, for the next call
        self._base += settled - 1
        return event


class Committer:
    """When to commit the watermark: every ``every`` events taken or ``interval`` seconds,
    whichever comes first, and at the end; an unchanged ID is not committed again."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        watermark: Callable[[], Event | None],
        *,
        every: int,
        interval: float,
    ) -> None:
        self.checkpoint = checkpoint
        self._watermark = watermark
        self._every = every
        self._interval = interval
        self._due = every
        self._committed: str | None = None
        self._closing = False
        self._wake: anyio.Event | None = None
        #: Commits made (a counter for tests and benchmarks).
        self.commits = 0

    def poke(self, taken: int) -> None:
        """``taken`` events have been taken so far: commit now if enough are new."""
        if taken >= self._due:
            self._due = taken + self._every
            if self._wake is not None:
                self._wake.set()

    async def run(self) -> None:
        """Commit the watermark as it moves, until :meth:`close`."""
        while not self._closing:
            self._wake = anyio.Event()
            with anyio.move_on_after(self._interval):
                await self._wake.wait()
            self._wake = None
            if self._closing:
                return
            try:
                await self.flush()
            except Exception:
                # A missed commit only means replaying more after a crash; the next one
                # catches up.
                logger.exception("could not commit the checkpoint %r", self.checkpoint)

    def close(self) -> None:
        self._closing = True
        if self._wake is not None:
            self._wake.set()

    async def flush(self) -> None:
        """Commit the watermark now if it moved since the last commit."""
        event = self._watermark()
        if event is None:
            return
        # Read only here: reading an event's ID makes a string.
        last_event_id = event.id
        if last_event_id == self._committed:
            return
        await self.checkpoint.commit(last_event_id)
        self._committed = last_event_id
        self.commits += 1
