"""fastsse.Consumer: bounded queue, workers, overflow policies, errors and stopping.

Most tests feed the consumer from in-memory sources, either one event at a time (any async
iterable) or a batch at a time (an object with ``batches()``, as AsyncEventStream), so the two
read paths are both covered. Races are made deterministic by a handler that holds every call
until the test releases it: the queue then fills exactly, and counts can be asserted exactly.
Every wait is bounded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator
from typing import Any, Callable, Union

import anyio
import anyio.abc
import anyio.lowlevel
import psutil
import pytest
from fastsse import AsyncEventStream, Event, FastSSEError
from fastsse.consume.consumer import Consumer, ConsumerStats, QueueOverflowError
from fastsse.testing import Response, SSEServer, event

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0
MiB = 1024 * 1024

# A source is scripted as steps: a list of events is yielded (as one batch, or one event at a
# time), a callable is awaited (to wait for the consumer to reach some state).
Step = Union[list[Event], Callable[[], Awaitable[object]]]


def ev(i: int) -> Event:
    return Event(data=f"event {i}", id=str(i))


def evs(start: int, stop: int) -> list[Event]:
    return [ev(i) for i in range(start, stop)]


def ids(events: Iterable[Event]) -> list[int]:
    return [int(e.id) for e in events]


class Source:
    """A scripted source; ``closed`` once the consumer has closed (or finished) its iteration."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self._steps = steps
        self.closed = False
        self.yielded = 0

    async def _play(self) -> AsyncIterator[list[Event]]:
        try:
            for step in self._steps:
                if isinstance(step, list):
                    self.yielded += len(step)
                    yield step
                else:
                    await step()
        finally:
            self.closed = True


class EventSource(Source):
    """An async iterable of events (read one event at a time)."""

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        batches = self._play()
        try:
            async for batch in batches:
                for item in batch:
                    yield item
        finally:
            await batches.aclose()  # closed with this iterator, not whenever it is collected


class BatchSource(Source):
    """Has ``batches()``, like AsyncEventStream (read a batch at a time)."""

    def batches(self) -> AsyncIterator[list[Event]]:
        return self._play()


@pytest.fixture(params=["events", "batches"])
def make_source(request: pytest.FixtureRequest) -> Callable[..., Source]:
    kind = EventSource if request.param == "events" else BatchSource
    return lambda *steps: kind(steps)


async def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll ``predicate`` (cheap, in-memory) until true; fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.001)


def assert_balanced(stats: ConsumerStats) -> None:
    """Every received event is in exactly one place, at any moment."""
    final = stats.handled + stats.failed + stats.dropped + stats.cancelled
    assert stats.received == final + stats.queued + stats.in_flight


def assert_settled(stats: ConsumerStats) -> None:
    """Every received event ended in exactly one final counter."""
    assert stats.queued == 0
    assert stats.in_flight == 0
    assert_balanced(stats)


class Gate:
    """An async handler (an object with an async ``__call__``) that holds each call until
    ``release`` is set, recording what started, finished and was cancelled."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.started: list[int] = []
        self.finished: list[int] = []
        self.cancelled: list[int] = []
        self.in_flight = 0

    async def __call__(self, event: Event) -> None:
        self.started.append(int(event.id))
        self.in_flight += 1
        try:
            await self.release.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(int(event.id))
            raise
        finally:
            self.in_flight -= 1
        self.finished.append(int(event.id))


async def forever() -> None:
    await anyio.sleep_forever()


async def run_in_background(consumer: Consumer, task_group: anyio.abc.TaskGroup) -> anyio.Event:
    """Start ``consumer.run()``; the returned event is set when it returns."""
    returned = anyio.Event()

    async def run() -> None:
        await consumer.run()
        returned.set()

    task_group.start_soon(run)
    return returned


# -- handlers ---------------------------------------------------------------------------------


async def test_async_handler_handles_every_event(make_source: Callable[..., Source]) -> None:
    seen: list[int] = []

    async def handler(e: Event) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(int(e.id))

    source = make_source(evs(0, 300), evs(300, 500))
    consumer = Consumer(source, handler)
    with anyio.fail_after(TIMEOUT):
        await consumer.run()
    assert sorted(seen) == list(range(500))
    assert consumer.stats.received == consumer.stats.handled == 500
    assert_settled(consumer.stats)
    assert source.closed


async def test_sync_handler_runs_in_worker_threads(make_source: Callable[..., Source]) -> None:
    seen: list[int] = []
    threads: set[int] = set()

    def handler(e: Event) -> None:
        threads.add(threading.get_ident())
        seen.append(int(e.id))

    source = make_source(evs(0, 1000))
    consumer = Consumer(source, handler, workers=3)
    with anyio.fail_after(TIMEOUT):
        await consumer.run()
    assert sorted(seen) == list(range(1000))
    assert threading.get_ident() not in threads
    assert consumer.stats.handled == 1000
    assert_settled(consumer.stats)


async def test_sync_function_returning_an_awaitable_is_awaited() -> None:
    seen: list[int] = []

    async def record(e: Event) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(int(e.id))

    callers: list[int] = []

    def handler(e: Event) -> Awaitable[None]:
        callers.append(threading.get_ident())
        return record(e)

    consumer = Consumer(EventSource([evs(0, 50)]), handler, workers=2)
    with anyio.fail_after(TIMEOUT):
        await consumer.run()
    assert sorted(seen) == list(range(50))
    assert consumer.stats.handled == 50
    assert_settled(consumer.stats)
    # Recognised at its first call in a thread (one such call per worker at most), the
    # handler is called in the event loop from then on.
    loop_thread = threading.get_ident()
    assert callers[0] != loop_thread
    assert 1 <= len([c for c in callers if c != loop_thread]) <= 2


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_one_worker_handles_events_in_order(
    make_source: Callable[..., Source], kind: str
) -> None:
    seen: list[int] = []

    async def async_handler(e: Event) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(int(e.id))

    def sync_handler(e: Event) -> None:
        seen.append(int(e.id))

    handler = async_handler if kind == "async" else sync_handler
    source = make_source(evs(0, 700), evs(700, 2000))
    consumer = Consumer(source, handler, workers=1, queue_size=64)
    with anyio.fail_after(TIMEOUT):
        await consumer.run()
    assert seen == list(range(2000))


async def test_async_workers_run_concurrently(make_source: Callable[..., Source]) -> None:
    in_flight = 0
    peak = 0
    all_in = anyio.Event()

    async def handler(e: Event) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 4:
            all_in.set()
        # With fewer than 4 concurrent calls this never returns and fail_after fails the test.
        await all_in.wait()
        in_flight -= 1

    consumer = Consumer(make_source(evs(0, 40)), handler, workers=4)
    with anyio.fail_after(TIMEOUT):
        await consumer.run()
    assert peak == 4
    assert consumer.stats.handled == 40


async def test_sync_workers_run_concurrently_in_threads(
    make_source: Callable[..., Source],
) -> None:
    lock = threading.Condition()
    in_flight = 0
    peak = 0

    def handler(e: Event) -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
            lock.notify_all()
            # Hold every call until 4 ran at once; bounded, so a sequential consumer fails
            # the assertion below instead of hanging.
            lock.wait_for(lambda: peak == 4, timeout=TIMEOUT)
            in_flight -= 1

    consumer = Consumer(make_source(evs(0, 40)), handler, workers=4)
    with anyio.fail_after(TIMEOUT + 5):
        await consumer.run()
    assert peak == 4
    assert consumer.stats.handled == 40
    assert consumer.stats.failed == 0


# -- overflow policies ------------------------------------------------------------------------

WORKERS, QUEUE, TOTAL = 2, 5, 20


def held_source(make_source: Callable[..., Source], gate: Gate, *rest: Step) -> Source:
    """Events 0 and 1 first; the rest once both are held in the two workers' handlers, so the
    queue fills with the workers busy and what overflows is exact."""

    async def both_held() -> None:
        await wait_until(lambda: gate.in_flight == WORKERS)

    return make_source(evs(0, WORKERS), both_held, *rest)


@pytest.mark.parametrize(
    ("overflow", "kept"),
    [
        ("drop_newest", range(WORKERS, WORKERS + QUEUE)),
        ("drop_oldest", range(TOTAL - QUEUE, TOTAL)),
    ],
)
async def test_drop_policies_count_exactly(
    make_source: Callable[..., Source], overflow: Any, kept: range
) -> None:
    gate = Gate()
    source = held_source(make_source, gate, evs(WORKERS, TOTAL))
    consumer = Consumer(source, gate, workers=WORKERS, queue_size=QUEUE, overflow=overflow)
    async with anyio.create_task_group() as tg:
        returned = await run_in_background(consumer, tg)
        await wait_until(lambda: source.closed)
        stats = consumer.stats
        assert (stats.received, stats.queued, stats.in_flight) == (TOTAL, QUEUE, WORKERS)
        assert stats.dropped == TOTAL - QUEUE - WORKERS
        assert_balanced(stats)
        assert not returned.is_set()  # still handling what was queued
        gate.release.set()
        with anyio.fail_after(TIMEOUT):
            await returned.wait()
    assert sorted(gate.finished) == [0, 1, *kept]
    assert stats.handled == WORKERS + QUEUE
    assert stats.max_queued == QUEUE
    assert_settled(stats)


async def test_error_policy_raises_after_handling_the_queue(
    make_source: Callable[..., Source],
) -> None:
    gate = Gate()
    # One event more than fits; then the source would never end: the overflow must close it.
    source = held_source(make_source, gate, evs(WORKERS, WORKERS + QUEUE + 1), forever)
    consumer = Consumer(source, gate, workers=WORKERS, queue_size=QUEUE, overflow="error")

    async def release_when_closed() -> None:
        await wait_until(lambda: source.closed)
        assert consumer.stats.dropped == 1
        gate.release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(release_when_closed)
        with anyio.fail_after(TIMEOUT), pytest.raises(QueueOverflowError) as caught:
            await consumer.run()
    assert isinstance(caught.value, FastSSEError)
    assert caught.value.queue_size == QUEUE
    assert f"queue_size={QUEUE}" in str(caught.value)
    stats = consumer.stats
    assert stats.received == WORKERS + QUEUE + 1
    assert stats.dropped == 1
    assert sorted(gate.finished) == list(range(WORKERS + QUEUE))
    assert stats.handled == WORKERS + QUEUE
    assert_settled(stats)


async def test_block_policy_holds_the_reader_at_queue_size(
    make_source: Callable[..., Source],
) -> None:
    gate = Gate()
    source = held_source(make_source, gate, evs(WORKERS, TOTAL))
    consumer = Consumer(source, gate, workers=WORKERS, queue_size=QUEUE, overflow="block")
    async with anyio.create_task_group() as tg:
        returned = await run_in_background(consumer, tg)
        await wait_until(lambda: consumer.stats.queued == QUEUE)
        stats = consumer.stats
        # The reader waits for room with the rest of the events: none dropped, none lost.
        assert (stats.received, stats.in_flight, stats.dropped) == (WORKERS + QUEUE, WORKERS, 0)
        assert_balanced(stats)
        assert not source.closed
        gate.release.set()
        with anyio.fail_after(TIMEOUT):
            await returned.wait()
    assert sorted(gate.finished) == list(range(TOTAL))
    assert consumer.stats.max_queued == QUEUE
    assert_settled(consumer.stats)


async def test_stop_without_drain_while_the_reader_waits_for_room_counts_every_event(
    make_source: Callable[..., Source],
) -> None:
    gate = Gate()
    source = held_source(make_source, gate, evs(WORKERS, TOTAL))
    consumer = Consumer(source, gate, workers=WORKERS, queue_size=QUEUE, overflow="block")
    async with anyio.create_task_group() as tg:
        returned = await run_in_background(consumer, tg)
        await wait_until(lambda: consumer.stats.queued == QUEUE)
        assert consumer.stats.received == WORKERS + QUEUE  # the reader holds more
        consumer.stop(drain=False)
        with anyio.fail_after(TIMEOUT):
            await returned.wait()
    stats = consumer.stats
    # Nothing was handled; every event taken from the stream, queued or held, is cancelled:
    # the whole batch the reader held, or the one event.
    held = TOTAL - WORKERS - QUEUE if isinstance(source, BatchSource) else 1
    assert stats.received == WORKERS + QUEUE + held
    assert (stats.handled, stats.cancelled) == (0, stats.received)
    assert sorted(gate.cancelled) == list(range(WORKERS))
    assert_settled(stats)


# -- failing handlers -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_raising_handler_is_counted_and_reported(
    make_source: Callable[..., Source], kind: str
) -> None:
    reported: list[tuple[int, Exception]] = []
    handled: list[int] = []

    def work(e: Event) -> None:
        if int(e.id) % 3 == 0:
            raise ValueError(f"bad {e.id}")
        handled.append(int(e.id))

    async def async_handler(e: Event) -> None:
        await anyio.lowlevel.checkpoint()
        work(e)

    def on_error(e: Event, error: Exception) -> None:
        reporters.add(threading.get_ident())
        reported.append((int(e.id), error))

    reporters: set[int] = set()
    handler = async_handler if kind == "async" else work
    source = make_source(evs(0, 150), evs(150, 300))
    consumer = Consumer(source, handler, on_error=on_error)
    with anyio.fail_after(TIMEOUT):
        await consumer.run()
    failing = [i for i in range(300) if i % 3 == 0]
    assert sorted(i for i, _ in reported) == failing
    assert all(isinstance(err, ValueError) and str(err) == f"bad {i}" for i, err in reported)
    assert sorted(handled) == [i for i in range(300) if i % 3]
    assert (consumer.stats.failed, consumer.stats.handled) == (100, 200)
    assert reporters == {threading.get_ident()}  # on_error runs in the event loop
    assert_settled(consumer.stats)


async def test_handler_errors_are_logged_by_default(caplog: pytest.LogCaptureFixture) -> None:
    def handler(e: Event) -> None:
        if e.id == "7":
            raise KeyError("missing")

    consumer = Consumer(EventSource([evs(0, 10)]), handler, workers=1)
    with caplog.at_level(logging.ERROR, logger="fastsse"), anyio.fail_after(TIMEOUT):
        await consumer.run()
    [record] = [r for r in caplog.records if r.name == "fastsse"]
    assert "id='7'" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], KeyError)
    assert (consumer.stats.handled, consumer.stats.failed) == (9, 1)


async def test_failing_on_error_is_logged_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(e: Event) -> None:
        raise RuntimeError("handler")

    def on_error(e: Event, error: Exception) -> None:
        raise RuntimeError("on_error")

    consumer = Consumer(EventSource([evs(0, 20)]), handler, on_error=on_error)
    with caplog.at_level(logging.ERROR, logger="fastsse"), anyio.fail_after(TIMEOUT):
        await consumer.run()
    assert consumer.stats.failed == 20
    assert len([r for r in caplog.records if "on_error failed" in r.getMessage()]) == 20
    assert_settled(consumer.stats)


async def test_stream_error_is_raised_after_the_queue_is_handled(
    make_source: Callable[..., Source],
) -> None:
    gate = Gate()

    async def fail() -> None:
        raise ConnectionError("stream broke")

    source = held_source(make_source, gate, evs(WORKERS, WORKERS + QUEUE), fail)

    async def release_when_closed() -> None:
        await wait_until(lambda: source.closed)
        gate.release.set()

    consumer = Consumer(source, gate, workers=WORKERS, queue_size=QUEUE)
    async with anyio.create_task_group() as tg:
        tg.start_soon(release_when_closed)
        with anyio.fail_after(TIMEOUT), pytest.raises(ConnectionError, match="stream broke"):
            await consumer.run()
    assert sorted(gate.finished) == list(range(WORKERS + QUEUE))
    assert consumer.stats.handled == WORKERS + QUEUE
    assert_settled(consumer.stats)


@pytest.mark.parametrize("fatal", [SystemExit, KeyboardInterrupt])
@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_base_exception_in_a_handler_propagates_with_exact_counts(
    make_source: Callable[..., Source], kind: str, fatal: type[BaseException]
) -> None:
    raised = fatal("handler says stop")
    calls: list[int] = []

    def work(e: Event) -> None:
        calls.append(int(e.id))
        if len(calls) == 11:
            raise raised

    async def async_handler(e: Event) -> None:
        await anyio.lowlevel.checkpoint()
        work(e)

    source = make_source(evs(0, 64), forever)
    consumer = Consumer(source, async_handler if kind == "async" else work, workers=1)
    with anyio.fail_after(TIMEOUT), pytest.raises(fatal) as info:
        await consumer.run()
    assert info.value is raised  # itself, not wrapped in an exception group
    assert calls == list(range(11))  # nothing was handled after it
    stats = consumer.stats
    assert (stats.handled, stats.failed) == (10, 1)
    assert stats.cancelled == stats.received - 11
    assert source.closed
    assert_settled(stats)


async def test_base_exception_in_one_of_many_sync_handlers_keeps_counts_exact() -> None:
    returned = 0
    lock = threading.Lock()

    def handler(e: Event) -> None:
        nonlocal returned
        if e.id == "100":
            raise SystemExit(3)
        with lock:
            returned += 1

    consumer = Consumer(BatchSource([evs(0, 1000)]), handler, workers=4)
    with anyio.fail_after(TIMEOUT), pytest.raises(SystemExit) as info:
        await consumer.run()
    assert info.value.code == 3
    assert consumer.stats.failed == 1
    assert consumer.stats.handled == returned  # every call that returned, and only those
    assert consumer.stats.received == 1000
    assert consumer.stats.cancelled == 1000 - 1 - returned
    assert_settled(consumer.stats)


async def test_base_exception_from_the_stream_propagates_itself() -> None:
    async def interrupt() -> None:
        raise KeyboardInterrupt

    gate = Gate()
    gate.release.set()
    source = BatchSource([evs(0, 5), interrupt])
    consumer = Consumer(source, gate, workers=1)
    with anyio.fail_after(TIMEOUT), pytest.raises(KeyboardInterrupt):
        await consumer.run()
    assert consumer.stats.received == 5
    assert_settled(consumer.stats)


# -- stopping ---------------------------------------------------------------------------------


async def test_stop_drain_handles_everything_queued(make_source: Callable[..., Source]) -> None:
    gate = Gate()
    source = held_source(make_source, gate, evs(WORKERS, WORKERS + QUEUE), forever)
    consumer = Consumer(source, gate, workers=WORKERS, queue_size=QUEUE)
    async with anyio.create_task_group() as tg:
        returned = await run_in_background(consumer, tg)
        await wait_until(
            lambda: source.yielded == WORKERS + QUEUE and consumer.stats.queued == QUEUE
        )
        consumer.stop()
        await wait_until(lambda: source.closed)  # reading stopped at once...
        assert not returned.is_set()  # ...but the run waits for the queued events
        gate.release.set()
        with anyio.fail_after(TIMEOUT):
            await returned.wait()
    assert sorted(gate.finished) == list(range(WORKERS + QUEUE))
    assert (consumer.stats.handled, consumer.stats.cancelled) == (WORKERS + QUEUE, 0)
    assert_settled(consumer.stats)


@pytest.mark.parametrize("drain_first", [False, True])
async def test_stop_without_drain_cancels_and_counts(
    make_source: Callable[..., Source], drain_first: bool
) -> None:
    gate = Gate()
    source = held_source(make_source, gate, evs(WORKERS, WORKERS + QUEUE), forever)
    consumer = Consumer(source, gate, workers=WORKERS, queue_size=QUEUE)
    async with anyio.create_task_group() as tg:
        returned = await run_in_background(consumer, tg)
        await wait_until(lambda: consumer.stats.queued == QUEUE)
        if drain_first:  # drain=False cuts a drain short
            consumer.stop()
        consumer.stop(drain=False)
        with anyio.fail_after(TIMEOUT):  # the gate is never released
            await returned.wait()
    stats = consumer.stats
    assert sorted(gate.cancelled) == [0, 1]
    assert gate.finished == []
    assert (stats.handled, stats.cancelled) == (0, WORKERS + QUEUE)
    assert source.closed
    assert_settled(stats)


async def test_stop_without_drain_lets_running_sync_handlers_finish() -> None:
    release = threading.Event()
    started: list[int] = []

    def handler(e: Event) -> None:
        started.append(int(e.id))
        if not release.wait(TIMEOUT):
            raise TimeoutError("never released")

    source = BatchSource([evs(0, 10), forever])
    consumer = Consumer(source, handler, workers=1)
    async with anyio.create_task_group() as tg:
        returned = await run_in_background(consumer, tg)
        await wait_until(lambda: started == [0])
        consumer.stop(drain=False)
        await wait_until(lambda: source.closed)
        # A thread cannot be interrupted: the run waits for the call in progress.
        assert not returned.is_set()
        release.set()
        with anyio.fail_after(TIMEOUT):
            await returned.wait()
    assert started == [0]  # nothing was started after the stop
    stats = consumer.stats
    assert (stats.handled, stats.failed, stats.cancelled) == (1, 0, 9)
    assert_settled(stats)


async def test_cancelling_run_counts_what_was_not_handled() -> None:
    gate = Gate()
    source = held_source(
        lambda *steps: EventSource(steps), gate, evs(WORKERS, WORKERS + QUEUE), forever
    )
    consumer = Consumer(source, gate, workers=WORKERS, queue_size=QUEUE)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer.run)
            await wait_until(lambda: consumer.stats.queued == QUEUE)
            tg.cancel_scope.cancel()
    assert (consumer.stats.handled, consumer.stats.cancelled) == (0, WORKERS + QUEUE)
    assert sorted(gate.cancelled) == [0, 1]
    assert source.closed
    assert_settled(consumer.stats)


def endless() -> Iterator[list[Event]]:
    start = 0
    while True:
        yield evs(start, start + 10)
        start += 10


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_stop_from_inside_a_handler(kind: str) -> None:
    seen: list[int] = []

    def work(e: Event) -> None:
        seen.append(int(e.id))
        if e.id == "25":
            consumer.stop()

    async def async_handler(e: Event) -> None:
        await anyio.lowlevel.checkpoint()
        work(e)

    source = BatchSource(endless())
    handler = async_handler if kind == "async" else work
    consumer = Consumer(source, handler, workers=1, queue_size=16)
    with anyio.fail_after(TIMEOUT):
        await consumer.run()
    # In order, and everything received after the stop was still handled (drain).
    assert seen == list(range(len(seen)))
    assert len(seen) > 25
    assert consumer.stats.handled == consumer.stats.received == len(seen)
    assert source.closed
    assert_settled(consumer.stats)


async def test_stop_from_another_thread() -> None:
    handled = 0

    async def handler(e: Event) -> None:
        nonlocal handled
        handled += 1
        await anyio.lowlevel.checkpoint()

    consumer = Consumer(BatchSource(endless()), handler, queue_size=16)
    async with anyio.create_task_group() as tg:
        returned = await run_in_background(consumer, tg)
        await wait_until(lambda: handled >= 100)
        stopper = threading.Thread(target=consumer.stop)
        stopper.start()
        with anyio.fail_after(TIMEOUT):
            await returned.wait()
        stopper.join(TIMEOUT)
    assert consumer.stats.handled == consumer.stats.received == handled
    assert_settled(consumer.stats)


async def test_stop_before_run_reads_nothing() -> None:
    source = EventSource([evs(0, 10)])
    consumer = Consumer(source, lambda e: None)
    consumer.stop()
    with anyio.fail_after(TIMEOUT):
        await consumer.run()
    assert consumer.stats.received == 0
    consumer.stop()  # after the run: a no-op


# -- running once (bad arguments: tests/stream/test_validation.py) ---------------------------------


async def test_a_consumer_runs_once() -> None:
    consumer = Consumer(EventSource([evs(0, 3)]), lambda e: None)
    await consumer.run()
    with pytest.raises(RuntimeError, match="runs once"):
        await consumer.run()


# -- a burst of 1,000,000 events --------------------------------------------------------------

BURST = 1_000_000
BATCH = 2000


class LazyBurst:
    """1,000,000 distinct events, made a batch at a time as the consumer asks for them (never
    all in memory), recording how far the source ever got ahead of the handler."""

    def __init__(self, handled: Callable[[], int]) -> None:
        self._handled = handled
        self.max_lead = 0

    async def batches(self) -> AsyncIterator[list[Event]]:
        for start in range(0, BURST, BATCH):
            self.max_lead = max(self.max_lead, start + BATCH - self._handled())
            yield [Event(data="payload " * 8, id=str(i)) for i in range(start, start + BATCH)]


async def test_burst_with_block_keeps_memory_flat() -> None:
    process = psutil.Process()
    handled = 0
    peak_rss = baseline = process.memory_info().rss

    async def slow_handler(e: Event) -> None:
        nonlocal handled, peak_rss
        handled += 1
        if handled % 4 == 0:  # slower than the source: the queue saturates
            await anyio.lowlevel.checkpoint()
        if handled % 50_000 == 0:
            peak_rss = max(peak_rss, process.memory_info().rss)

    source = LazyBurst(lambda: handled)
    consumer = Consumer(source, slow_handler, workers=4, queue_size=1000, overflow="block")
    with anyio.fail_after(60):
        await consumer.run()
    stats = consumer.stats
    assert stats.received == stats.handled == handled == BURST
    assert stats.max_queued == 1000  # saturated, never above queue_size
    # The source was never more than the queue, the workers' events and a batch ahead.
    assert source.max_lead <= 1000 + 4 + BATCH
    # A million events of this size held at once would take well over 200 MiB.
    assert peak_rss - baseline < 50 * MiB
    assert_settled(stats)


@pytest.mark.parametrize("overflow", ["drop_oldest", "drop_newest"])
async def test_burst_with_drop_policies_counts_every_drop(overflow: Any) -> None:
    queue_size = 256
    seen: set[int] = set()

    async def slow_handler(e: Event) -> None:
        seen.add(int(e.id))
        await anyio.lowlevel.checkpoint()

    source = LazyBurst(lambda: len(seen))
    consumer = Consumer(source, slow_handler, workers=4, queue_size=queue_size, overflow=overflow)
    with anyio.fail_after(60):
        await consumer.run()
    stats = consumer.stats
    assert stats.received == BURST
    assert stats.handled == len(seen)  # each handled event exactly once
    assert stats.dropped == BURST - len(seen) > 0
    assert (stats.failed, stats.cancelled) == (0, 0)
    assert stats.max_queued == queue_size
    # The workers ran while the source (which never suspends) was producing: at least one
    # event per batch. Starved, they would only have handled the last queue full.
    assert len(seen) > BURST // BATCH + queue_size
    # The first batch (2000 events) met an empty queue of 256.
    first = {i for i in seen if i < BATCH}
    if overflow == "drop_newest":
        # It kept its first 256, and later batches could only drop their own events.
        assert first == set(range(queue_size))
    else:
        # It kept its last 256, which the next batch pushed out unless a worker had one.
        assert first <= set(range(BATCH - queue_size, BATCH))
        assert BURST - 1 in seen  # the newest event always survives drop_oldest
    assert_settled(stats)


# -- end to end, over a real connection -------------------------------------------------------


async def test_end_to_end_every_event_once_in_order() -> None:
    corpus = b"".join(event(f"payload {i}", id=str(i)) for i in range(10_000))
    seen: list[int] = []

    async def handler(e: Event) -> None:
        seen.append(int(e.id))
        if len(seen) % 100 == 0:
            await anyio.lowlevel.checkpoint()

    async with SSEServer(Response.stream_bytes(corpus, chunk_size=4096)) as server:
        url = server.url_for("/feed")
        async with AsyncEventStream(url, reconnect=False) as stream:
            consumer = Consumer(stream, handler, workers=1, queue_size=64)
            with anyio.fail_after(30):
                await consumer.run()
    assert seen == list(range(10_000))
    assert consumer.stats.handled == stream.stats.events == 10_000
    assert_settled(consumer.stats)


async def test_block_stops_reading_the_socket() -> None:
    chunk = b"".join(event("x" * 100, id=str(i)) for i in range(150))  # about 16 KiB
    chunks = 16_000  # about 250 MiB, produced only as the client reads
    sent = 0

    def lazy_body() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(chunks):
            sent += len(chunk)
            yield chunk

    gate = Gate()
    async with SSEServer(lambda request: Response(body=lazy_body())) as server:
        async with AsyncEventStream(server.url_for("/feed")) as stream:
            consumer = Consumer(stream, gate, workers=1, queue_size=4, overflow="block")
            async with anyio.create_task_group() as tg:
                returned = await run_in_background(consumer, tg)
                await wait_until(lambda: gate.in_flight == 1 and consumer.stats.queued == 4)
                # Let the server push all it can: it stalls once the socket buffers are full.
                last = -1
                with anyio.fail_after(TIMEOUT):
                    while sent != last:
                        last = sent
                        await anyio.sleep(0.25)
                assert stream.stats.bytes < 1 * MiB  # the client stopped reading...
                assert sent < 64 * MiB < len(chunk) * chunks  # ...so TCP pushed back on the server
                assert consumer.stats.received < 1000
                assert_balanced(consumer.stats)
                consumer.stop()
                gate.release.set()
                with anyio.fail_after(TIMEOUT):
                    await returned.wait()
        await server.wait_for_idle_async()  # stopping closed the connection
    stats = consumer.stats
    assert stats.received == stream.stats.events == stats.handled
    assert_settled(stats)
