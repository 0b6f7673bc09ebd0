"""Consume a stream with a bounded queue and a pool of workers.

One reader (the task that awaits :meth:`Consumer.run`) moves events from the stream into a
bounded queue; ``workers`` worker tasks take them out and call the handler. What happens when
the queue is full is the ``overflow`` policy: ``block`` makes the reader wait, so it stops
reading the socket and TCP pushes back on the server; the ``drop_*`` policies discard and count;
``error`` fails the run. Every event that enters ends in exactly one counter of
:class:`ConsumerStats`, so at the end ``received == handled + failed + dropped + cancelled``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional, cast, get_args

import anyio
import anyio.lowlevel
import anyio.to_thread

from fastsse._errors import FastSSEError
from fastsse._fastsse import Event
from fastsse._io._async.flavour import threadsafe_scheduler
from fastsse._io.merge import merge
from fastsse._io.stream import AsyncEventStream, EventStream
from fastsse.consume.checkpoint import IDLE, Checkpoint, Committer, Watermark

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

__all__ = ["Consumer", "ConsumerStats", "ErrorHandler", "Handler", "Overflow", "QueueOverflowError"]

#: A Consumer's handler: an ``async def`` function (awaited in a worker task) or a plain one
#: (run in a worker thread; an awaitable it returns is awaited). Any other result is ignored.
Handler = Callable[[Event], object]
#: A Consumer's ``on_error``: a plain function called in the event loop with the event and the
#: exception its handler raised. Its result is ignored.
ErrorHandler = Callable[[Event, Exception], object]
#: What a Consumer does when its queue is full (see :class:`Consumer`).
Overflow = Literal["block", "drop_oldest", "drop_newest", "error"]

_POLICIES: tuple[str, ...] = get_args(Overflow)
#: A trip to a worker thread costs tens of microseconds, far more than a fast handler, so a
#: sync handler gets several queued events per trip: as many as take about this many seconds
#: by its measured speed, at most _MAX_THREAD_BATCH. A slow handler (a millisecond or more per
#: event) gets one event per trip, so no worker idles while another holds a private backlog.
_THREAD_TRIP = 0.001
_MAX_THREAD_BATCH = 256
_INITIAL_THREAD_BATCH = 16

logger = logging.getLogger("fastsse")

#: What a trip to a worker thread did: handler calls made, the exceptions they raised, the
#: awaitable a "sync" handler returned (if one did), the BaseException that ended the trip.
_Outcome = tuple[
    int, list[tuple[Event, Exception]], Optional[Awaitable[object]], Optional[BaseException]
]
#: Told that the events numbered ``first``, ``first + 1``... in stream order are settled.
_Settled = Callable[[int, Sequence[Event]], None]


class QueueOverflowError(FastSSEError):
    """The queue was full and ``overflow="error"``: the handlers fell behind the stream."""

    def __init__(self, message: str, *, queue_size: int) -> None:
        super().__init__(message)
        self.queue_size = queue_size


@dataclass
class ConsumerStats:
    """Where every event went. Live: the consumer updates it as it runs.

    Each received event is, at any moment, in exactly one of ``queued``, ``in_flight``,
    ``handled``, ``failed``, ``dropped``, ``cancelled``; the last four are final.
    """

    #: Events taken in from the stream (under ``block``, a batch is counted as it goes into
    #: the queue, so that at every moment ``received == handled + failed + dropped +
    #: cancelled + queued + in_flight``).
    received: int = 0
    #: Handler calls that returned.
    handled: int = 0
    #: Handler calls that raised: an ``Exception`` is passed to ``on_error``; any other
    #: ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``...) ends the run, which raises it.
    failed: int = 0
    #: Events discarded by the overflow policy (``drop_oldest``, ``drop_newest``, and with
    #: ``error`` the events that did not fit).
    dropped: int = 0
    #: Events discarded unhandled because the run was stopped with ``drain=False`` or cancelled,
    #: including async handler calls cancelled midway.
    cancelled: int = 0
    #: Events waiting in the queue now.
    queued: int = 0
    #: Events taken by a worker whose handler has not finished.
    in_flight: int = 0
    #: The most events the queue ever held (never more than ``queue_size``).
    max_queued: int = 0


class Consumer:
    """Handle the events of ``stream`` with ``workers`` concurrent calls of ``handler``.

    Args:
        stream: an :class:`~fastsse.AsyncEventStream`, read a chunk at a time through its
            ``batches()`` (any object with a ``batches()`` method returning an async iterator
            of event lists is read the same way), or any async iterable of events; or a list
            (or tuple) of AsyncEventStreams, read together through :func:`fastsse.merge`
            (fairly, each keeping its own reconnects) into the one queue and worker pool, and
            closed when the run ends.
        handler: an ``async def`` function, awaited in one of ``workers`` worker tasks, or a
            plain function, run in threads (at most ``workers`` at a time; a fast handler is
            given several queued events per trip to its thread, a slow one a single event). A
            plain function that returns an awaitable is recognised at its first call: the
            awaitable is awaited and the handler is called in the event loop from then on.
        workers: how many events are handled at once (an int >= 1, default 4). With 1, events
            are handled one at a time in stream order; with more, they may finish in any order.
        queue_size: how many events may wait between the stream and the workers (an int >= 1,
            default 1024).
        overflow: what happens when the queue is full (see :data:`~fastsse.Overflow`):
            ``"block"`` (default) waits for room, so the socket is not read and memory stays
            flat; ``"drop_oldest"`` discards the oldest waiting event, ``"drop_newest"`` the
            arriving one, each counted in ``stats.dropped``; ``"error"`` stops reading and makes
            :meth:`run` raise :class:`QueueOverflowError` once the queued events are handled.
        on_error: a plain function called in the event loop as ``on_error(event, exception)``
            for each handler call that raised an ``Exception`` (counted in ``stats.failed``);
            the run goes on. Default: the failure is logged to the ``fastsse`` logger.

    A handler raising a ``BaseException`` that is not an ``Exception`` (``SystemExit``,
    ``KeyboardInterrupt``) ends the run as ``stop(drain=False)`` would, and :meth:`run` raises
    that exception itself once every event is counted.

    ``await consumer.run()`` returns when the stream ends and every queued event is handled, or
    after :meth:`stop`. It raises what the stream raised (again after the queue is handled).
    A consumer runs once; :attr:`stats` shows where every event went.

    ``checkpoint`` (a :class:`~fastsse.Checkpoint`) makes the run survive the death
    of its process: a stream given no ``last_event_id`` resumes from the stored ID, and the ID
    of the last event such that it and every event before it is settled (handled, or failed
    and passed to ``on_error``) is committed every ``commit_every`` events or
    ``commit_interval`` seconds, whichever comes first, and when the run ends. After a
    ``kill -9`` nothing is skipped; the events handled again are those queued, in flight or
    settled since the last commit. With several streams, ``checkpoint`` is a mapping of each
    stream to its own Checkpoint (each under its own key, e.g. ``SQLiteCheckpoint(path,
    key=url)``), and ``overflow`` must be ``"block"``: each stream resumes from its own ID,
    and commits the last of its events below the run's watermark.
    """

    def __init__(
        self,
        stream: AsyncIterable[Event] | Sequence[AsyncEventStream],
        handler: Handler,
        *,
        workers: int = 4,
        queue_size: int = 1024,
        overflow: Overflow = "block",
        on_error: ErrorHandler | None = None,
        checkpoint: Checkpoint | Mapping[AsyncEventStream, Checkpoint] | None = None,
        commit_every: int = 10_000,
        commit_interval: float = 1.0,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}")
        if on_error is not None and not callable(on_error):
            raise TypeError(f"on_error must be callable or None, got {on_error!r}")
        if on_error is not None and _is_async_callable(on_error):
            # It runs in the event loop, where awaiting it would stall the workers' reports.
            raise TypeError(
                "on_error must be a plain function, not a coroutine function: it is called in "
                "the event loop to record a failure, and is not awaited"
            )
        _check_count("workers", workers)
        _check_count("queue_size", queue_size)
        if not isinstance(overflow, str):
            raise TypeError(f"overflow must be a str, one of {', '.join(map(repr, _POLICIES))}")
        if overflow not in _POLICIES:
            raise ValueError(
                f"overflow must be one of {', '.join(map(repr, _POLICIES))}, got {overflow!r}"
            )
        if isinstance(stream, EventStream):
            raise TypeError("a Consumer reads an AsyncEventStream, not an EventStream")
        #: Several streams, read through one merge; their checkpoints, by stream.
        self._streams: tuple[AsyncEventStream, ...] = ()
        self._checkpoints: dict[AsyncEventStream, Checkpoint] = {}
        if isinstance(stream, (list, tuple)):
            if not all(isinstance(each, AsyncEventStream) for each in stream):
                raise TypeError(
                    "stream must be an async iterable of events, or a list of "
                    f"AsyncEventStreams, got {stream!r}"
                )
            self._streams = tuple(stream)
            merged: Any = merge(*self._streams)  # refuses what cannot be merged
            stream = merged
            if checkpoint is not None:
                self._checkpoints = _checkpoints_by_stream(self._streams, checkpoint, overflow)
                checkpoint = None
        if not callable(getattr(stream, "batches", None)) and not hasattr(stream, "__aiter__"):
            raise TypeError(f"stream must be an async iterable of events, got {stream!r}")
        self._committer: Committer | None = None
        if checkpoint is not None:
            if not isinstance(checkpoint, Checkpoint):
                raise TypeError(f"checkpoint must be a fastsse Checkpoint, got {checkpoint!r}")
            if not isinstance(stream, AsyncEventStream):
                raise TypeError(
                    "checkpoint= needs an AsyncEventStream, the stream that can resume from "
                    f"the stored event ID; got {stream!r}"
                )
            _check_count("commit_every", commit_every)
            if not commit_interval > 0:
                raise ValueError(f"commit_interval must be > 0 seconds, got {commit_interval!r}")
        # The checkpoint's watermark: what the workers hold unsettled.
        tracked = checkpoint is not None or self._checkpoints
        self._watermark = Watermark(workers) if tracked else None
        if checkpoint is not None:
            self._committer = Committer(
                checkpoint, self._watermark_event, every=commit_every, interval=commit_interval
            )
        #: With several streams: a committer per stream, and per stream the events put in the
        #: queue, as (number of events queued so far, the batch's last event).
        self._committers = {
            each: Committer(
                store,
                partial(self._stream_watermark, each),
                every=commit_every,
                interval=commit_interval,
            )
            for each, store in self._checkpoints.items()
        }
        self._batch_ends: dict[AsyncEventStream, deque[tuple[int, Event]]] = {
            each: deque() for each in self._checkpoints
        }
        self._stream_marks: dict[AsyncEventStream, Event] = {}
        self._queued_total = 0
        # Told about settled events by their number in stream order (fastsse.redis's acks);
        # _settled_one for one event.
        self._settled: _Settled | None = None
        self._settled_one: Callable[[int, Event], None] | None = None
        self._taken_count = 0  # events taken from the queue so far: the next one's number
        self._stream = stream
        self._handler = handler
        self._on_error = on_error
        self._workers = workers
        self._capacity = queue_size
        self._overflow: Overflow = overflow
        # A blocked reader resumes once a quarter of the queue is free, not at every free slot:
        # one wake-up per many events instead of a reader/worker ping-pong per event.
        self._resume_at = queue_size - max(1, queue_size // 4)
        self._handler_is_coro = _is_async_callable(handler)
        self._in_thread = not self._handler_is_coro
        # Seconds per event of the sync handler, measured in its threads (a moving average).
        self._thread_cost = _THREAD_TRIP / _INITIAL_THREAD_BATCH
        self._stats = ConsumerStats()
        # maxlen makes extend() discard from the left in C: exactly drop_oldest. The other
        # policies never let the queue reach past it.
        self._queue: deque[Event] = deque(maxlen=queue_size)
        self._started = False
        self._stopping = False  # stop(): read no more
        self._input_done = False  # the reader is finished: no event will be queued any more
        self._abort = False  # stop(drain=False) or cancellation: handle no more
        self._fatal: BaseException | None = None  # a handler's SystemExit or the like
        self._items: anyio.Event | None = None  # what idle workers wait on
        self._room: anyio.Event | None = None  # what a blocked reader waits on
        self._read_scope: anyio.CancelScope | None = None
        self._task_group: TaskGroup | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._workers_left = 0
        self._workers_done: anyio.Event | None = None
        self._loop_thread: int | None = None
        self._call_soon_threadsafe: Callable[[Callable[[], None]], object] | None = None

    @property
    def stats(self) -> ConsumerStats:
        """Where every event went: live counts, updated as the consumer runs."""
        return self._stats

    # -- control ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Read the stream and handle its events until it ends or :meth:`stop` is called."""
        if self._started:
            raise RuntimeError("a Consumer runs once; make a new one")
        self._started = True
        self._loop_thread = threading.get_ident()
        self._call_soon_threadsafe = threadsafe_scheduler()
        self._limiter = anyio.CapacityLimiter(self._workers)
        self._workers_done = anyio.Event()
        committer = self._committer
        if committer is not None:
            await self._resume(committer.checkpoint)
        for each, each_committer in self._committers.items():
            await self._resume(each_committer.checkpoint, each)
        error: Exception | None = None
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                self._workers_left = self._workers
                for index in range(self._workers):
                    task_group.start_soon(self._worker, index)
                if committer is not None:
                    task_group.start_soon(committer.run)
                for each_committer in self._committers.values():
                    task_group.start_soon(each_committer.run)
                try:
                    error = await self._read()
                    self._wake_workers()
                    # Waiting here rather than in the task group's exit keeps this task
                    # cancellable with its except clause in place (see below).
                    await self._workers_done.wait()
                    if committer is not None:
                        committer.close()
                    for each_committer in self._committers.values():
                        each_committer.close()
                except BaseException:
                    # Cancelled (stop(drain=False) or from outside), or worse: handler threads
                    # check this flag before each event, so they stop at once too.
                    self._abort = True
                    raise
        finally:
            self._loop_thread = None
            self._task_group = None
            leftover = len(self._queue)
            if leftover:
                self._queue.clear()
                self._stats.cancelled += leftover
                self._stats.queued = 0
            if committer is not None:
                await self._final_commit(committer)
            for each_committer in self._committers.values():
                await self._final_commit(each_committer)
        if self._fatal is not None:
            raise self._fatal
        if error is not None:
            raise error

    async def _resume(self, checkpoint: Checkpoint, stream: Any = None) -> None:
        """A stream given no ID starts where the checkpoint says."""
        stream = self._stream if stream is None else stream
        assert isinstance(stream, AsyncEventStream)
        if stream.last_event_id:
            return  # an explicit ID wins
        stored = await checkpoint.load()
        if stored:
            logger.info("resuming from the checkpointed event id %r (%r)", stored, checkpoint)
            stream.resume_from(stored)

    def _watermark_event(self) -> Event | None:
        assert self._watermark is not None
        return self._watermark.event(self._taken_count)

    def _stream_watermark(self, stream: AsyncEventStream) -> Event | None:
        """The watermark of one of several streams: the last event of its batches that were
        queued wholly below the run's watermark (so every event of it before is settled)."""
        watermark = self._watermark
        assert watermark is not None
        watermark.event(self._taken_count)  # lets go of the settled history
        low = min(watermark.busy)  # the first event not settled
        if low == IDLE:
            low = self._taken_count
        ends = self._batch_ends[stream]
        while ends and ends[0][0] <= low:
            self._stream_marks[stream] = ends.popleft()[1]
        return self._stream_marks.get(stream)

    @staticmethod
    async def _final_commit(committer: Committer) -> None:
        committer.close()
        # Shielded: a cancelled run still records what it finished.
        with anyio.CancelScope(shield=True):
            try:
                await committer.flush()
            except Exception:
                logger.exception("could not commit the checkpoint %r", committer.checkpoint)

    def stop(self, *, drain: bool = True) -> None:
        """Stop reading the stream and end :meth:`run`; returns at once.

        ``drain=True``: the events already received are still handled, then ``run()`` returns.
        ``drain=False``: queued events are discarded and async handlers in progress cancelled,
        all counted in ``stats.cancelled``; a sync handler already running in a thread cannot
        be interrupted, so it finishes (and counts as handled or failed). ``drain=False`` after
        ``drain=True`` cuts a drain short. Safe from a handler, another task or another thread.
        The stream's iteration is closed (for an AsyncEventStream, its connection); closing
        the stream object itself stays with its owner.
        """
        loop_thread, call_soon = self._loop_thread, self._call_soon_threadsafe
        if call_soon is not None and loop_thread not in (None, threading.get_ident()):
            with contextlib.suppress(RuntimeError):  # the loop is closed, so the run is over
                call_soon(partial(self._stop, drain))
            return
        self._stop(drain)

    def _stop(self, drain: bool) -> None:
        self._stopping = True
        if self._read_scope is not None:
            self._read_scope.cancel()
        if not drain:
            self._abort = True
            if self._task_group is not None:
                self._task_group.cancel_scope.cancel()
        # A reader waiting for room and idle workers must look at the flags again.
        self._wake_reader()
        self._wake_workers()

    # -- the reader ---------------------------------------------------------------------------

    async def _read(self) -> Exception | None:
        """Move events from the stream to the queue; returns the error that ended the stream."""
        stream: Any = self._stream
        per_event = not callable(getattr(stream, "batches", None))
        put = self._put_blocking if self._overflow == "block" else self._put_now
        iterator: AsyncIterator[Any] | None = None
        try:
            iterator = stream.__aiter__() if per_event else stream.batches()
            several = bool(self._streams)
            while not self._stopping:
                # A scope for the read alone: stop() interrupts a read waiting on the socket,
                # never a batch half put into the queue.
                with anyio.CancelScope() as scope:
                    self._read_scope = scope
                    try:
                        item = await iterator.__anext__()
                    except StopAsyncIteration:
                        return None
                    finally:
                        self._read_scope = None
                if scope.cancelled_caught:
                    return None
                if several:
                    source, item = item
                    await put(item)
                    if self._committers:
                        self._queued_total += len(item)
                        self._batch_ends[source].append((self._queued_total, item[-1]))
                        self._committers[source].poke(self._taken_count)
                    continue
                await put([item] if per_event else item)
                if self._committer is not None:
                    self._committer.poke(self._taken_count)
                    # Let go of the events below the watermark now, not at the next commit:
                    # thousands of dead events kept alive slow every allocation down.
                    self._watermark_event()
                # Let the workers run after each batch, so that a source that never suspends
                # cannot starve them (and drop everything under a drop policy).
                await anyio.lowlevel.checkpoint()
            return None
        except Exception as error:
            # Not raised here: the workers still handle what was queued (see run()).
            return error
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as fatal:
            # Raised by run() itself, not wrapped in the task group's exception group.
            self._end_with(fatal)
            return None
        finally:
            self._input_done = True
            self._wake_workers()
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                # Closing releases the connection; it must happen even while cancelled.
                with anyio.CancelScope(shield=True):
                    await aclose()

    def _accepted(self) -> None:
        queued = len(self._queue)
        stats = self._stats
        stats.queued = queued
        if queued > stats.max_queued:
            stats.max_queued = queued
        self._wake_workers()

    async def _put_blocking(self, events: Sequence[Event]) -> None:
        queue, capacity, stats = self._queue, self._capacity, self._stats
        total = len(events)
        done = 0
        try:
            while True:
                room = capacity - len(queue)
                if room >= total - done:
                    queue.extend(events[done:] if done else events)
                    stats.received += total - done
                    done = total
                    self._accepted()
                    return
                if room > 0:
                    queue.extend(events[done : done + room])
                    done += room
                    stats.received += room
                    self._accepted()
                if self._abort:
                    return
                # Waiting here is the backpressure: the socket is not read meanwhile.
                self._room = room_event = anyio.Event()
                await room_event.wait()
        finally:
            # Only stop(drain=False) or cancellation leaves part of a batch out of the queue.
            stats.received += total - done
            stats.cancelled += total - done

    async def _put_now(self, events: Sequence[Event]) -> None:
        queue, capacity, stats = self._queue, self._capacity, self._stats
        total = len(events)
        stats.received += total
        room = capacity - len(queue)
        if total <= room:
            queue.extend(events)
        elif self._overflow == "drop_oldest":
            # The deque's maxlen discards from the left as the batch goes in.
            stats.dropped += total - room
            queue.extend(events)
        else:
            stats.dropped += total - room
            queue.extend(events[:room])
            if self._overflow == "error":
                self._accepted()
                raise QueueOverflowError(
                    f"the consumer's queue is full (queue_size={capacity}): the handlers fell "
                    f"behind the stream, so {total - room} arriving event(s) were not queued "
                    f"(counted in stats.dropped); use overflow='block' to slow the stream "
                    f"down instead, or a drop policy to shed load",
                    queue_size=capacity,
                )
        self._accepted()

    # -- the workers --------------------------------------------------------------------------

    def _wake_workers(self) -> None:
        items = self._items
        if items is not None:
            self._items = None
            items.set()

    def _wake_reader(self) -> None:
        room = self._room
        if room is not None:
            self._room = None
            room.set()

    async def _worker(self, index: int) -> None:
        try:
            await self._work(index)
        finally:
            self._workers_left -= 1
            if self._workers_left == 0 and self._workers_done is not None:
                self._workers_done.set()

    async def _work(self, index: int) -> None:
        queue = self._queue
        # The checkpoint's bookkeeping, inline: it runs for every event.
        tracking = self._watermark is not None
        history: list[Event] = [] if self._watermark is None else self._watermark.history
        busy: list[int] = [] if self._watermark is None else self._watermark.busy
        while not self._abort:
            if not queue:
                if tracking:
                    busy[index] = IDLE  # what this worker took is settled
                if self._input_done:
                    return  # drained: nothing is queued and nothing more will be
                if self._items is None:
                    self._items = anyio.Event()
                await self._items.wait()
                continue
            if self._in_thread:
                # An even share of the queue per worker, so that no worker sits idle while
                # another holds a private batch.
                limit = min(_MAX_THREAD_BATCH, max(1, int(_THREAD_TRIP / self._thread_cost)))
                count = min(limit, -(-len(queue) // self._workers))
                batch = [queue.popleft() for _ in range(count)]
                first = self._taken(count)
                if tracking:
                    history.extend(batch)
                    busy[index] = first
                settled = await self._handle_in_thread(batch)
                if tracking:
                    busy[index] = IDLE if settled == count else first + settled
                if self._settled is not None and settled:
                    self._settled(first, batch[:settled])
            else:
                event = queue.popleft()
                first = self._taken(1)
                if tracking:
                    history.append(event)
                    busy[index] = first
                # It raises if the event was not settled; if it returns, the event is, and
                # busy[index] stays until the next event or an empty queue (one store saved
                # per event, for a watermark at most one event behind).
                await self._handle(event)
                # After a fatal exception (SystemExit...) the run ends: the event that raised
                # it is not settled, so that a restart handles it again.
                if self._settled_one is not None and self._fatal is None:
                    self._settled_one(first, event)

    def _taken(self, count: int) -> int:
        """``count`` events left the queue; returns the first one's number in stream order."""
        stats = self._stats
        stats.queued -= count
        stats.in_flight += count
        if self._room is not None and len(self._queue) <= self._resume_at:
            self._wake_reader()
        first = self._taken_count
        self._taken_count = first + count
        return first

    async def _handle(self, event: Event, result: Awaitable[object] | None = None) -> None:
        """Call the handler in the loop (or finish its ``result``); count how it ended."""
        stats = self._stats
        try:
            outcome = self._handler(event) if result is None else result
            if self._handler_is_coro:
                await cast("Awaitable[object]", outcome)
            elif inspect.isawaitable(outcome):
                await outcome
        except Exception as error:
            stats.failed += 1
            self._report(event, error)
        except anyio.get_cancelled_exc_class():
            stats.cancelled += 1
            raise
        except BaseException as fatal:
            stats.failed += 1
            self._end_with(fatal)
        else:
            stats.handled += 1
        finally:
            stats.in_flight -= 1

    async def _handle_in_thread(self, events: list[Event]) -> int:
        """Handle ``events`` in a thread; returns how many, from the first, were settled."""
        stats = self._stats
        limiter = self._limiter
        settled = 0
        try:
            # Not abandoned on cancellation: the thread's results are counted, never lost.
            done, failures, pending, fatal = await anyio.to_thread.run_sync(
                self._call_in_thread, events, limiter=limiter
            )
            settled = done - (pending is not None)
            failed = len(failures) + (fatal is not None)
            stats.failed += failed
            stats.handled += settled - failed
            stats.in_flight -= settled
            for event, error in failures:
                self._report(event, error)
            if fatal is not None:
                self._end_with(fatal)
                # Counted as failed, but not settled: after a restart it is handled again.
                return settled - 1
            if pending is not None:
                # The "sync" handler returned an awaitable: it is async after all.
                self._in_thread = False
                settled += 1
                await self._handle(events[settled - 1], pending)
            while settled < len(events) and not self._abort:
                settled += 1
                await self._handle(events[settled - 1])
            return settled
        finally:
            unsettled = len(events) - settled
            if unsettled:
                stats.cancelled += unsettled
                stats.in_flight -= unsettled

    def _call_in_thread(self, events: list[Event]) -> _Outcome:
        """In a worker thread: call the handler on each event until done, aborted or async."""
        handler = self._handler
        failures: list[tuple[Event, Exception]] = []
        started = time.perf_counter()
        done = 0
        pending: Awaitable[object] | None = None
        fatal: BaseException | None = None
        for event in events:
            if self._abort:
                break
            done += 1
            try:
                result = handler(event)
            except Exception as error:
                failures.append((event, error))
                continue
            except BaseException as error:
                # Carried back to the event loop: raised in this thread, it would lose the
                # counts of the calls before it.
                fatal = error
                break
            if result is not None and inspect.isawaitable(result):
                pending = result
                break
        if done:
            # Unsynchronised between threads on purpose: it is only an estimate.
            cost = (time.perf_counter() - started) / done
            self._thread_cost = max(1e-9, 0.5 * self._thread_cost + 0.5 * cost)
        return done, failures, pending, fatal

    def _end_with(self, fatal: BaseException) -> None:
        """A handler or the stream raised ``fatal`` (SystemExit or the like): end the run as
        ``stop(drain=False)`` does, and have :meth:`run` raise it itself (not wrapped in the
        task group's exception group) once every event is counted."""
        if self._fatal is None:
            self._fatal = fatal
        self._stop(drain=False)

    def _report(self, event: Event, error: Exception) -> None:
        try:
            if self._on_error is None:
                logger.error(
                    "Consumer handler failed on event id=%r event=%r",
                    getattr(event, "id", None),
                    getattr(event, "event", None),
                    exc_info=(type(error), error, error.__traceback__),
                )
            else:
                self._on_error(event, error)
        except Exception:
            # on_error is a reporting hook: its own failure must not end the run.
            logger.exception("Consumer on_error failed on event id=%r", getattr(event, "id", None))


def _check_count(name: str, value: int, least: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {least}, got {type(value).__name__} {value!r}")
    if value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")


def _is_async_callable(handler: Callable[..., object]) -> bool:
    # iscoroutinefunction sees through functools.partial and bound methods, not through an
    # object whose __call__ is async.
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - the attribute, not callable()
    )


def _checkpoints_by_stream(
    streams: tuple[AsyncEventStream, ...], checkpoint: object, overflow: str
) -> dict[AsyncEventStream, Checkpoint]:
    """The ``checkpoint=`` of a Consumer of several streams: one Checkpoint per stream."""
    if not isinstance(checkpoint, Mapping):
        raise TypeError(
            "with several streams, checkpoint must be a mapping of each stream to its own "
            f"Checkpoint (each under its own key), got {checkpoint!r}"
        )
    if {id(stream) for stream in checkpoint} != {id(stream) for stream in streams}:
        raise ValueError("checkpoint must map each of the streams, and only them, to a Checkpoint")
    for store in checkpoint.values():
        if not isinstance(store, Checkpoint):
            raise TypeError(f"checkpoint values must be fastsse Checkpoints, got {store!r}")
    if len({id(store) for store in checkpoint.values()}) != len(checkpoint):
        raise ValueError(
            "checkpoint must give each stream a Checkpoint of its own (each under its own key): "
            "streams sharing one would overwrite each other's position"
        )
    if overflow != "block":
        raise ValueError(
            "checkpoints of several streams need overflow='block' (a dropped event would "
            "shift which of a stream's events are settled)"
        )
    return dict(checkpoint)
