"""``fastsse._fastsse.BatchIterator``: the items of an async iterator of lists, one by one, each
handed out without suspending while a list is buffered (what ``EventSource.aiter_sse`` runs on).

These drive it with plain asyncio and hand-written sources, so that each test reaches the state
it names: a batch buffered, a refill suspended, a source that fails, a task cancelled."""

from __future__ import annotations

import asyncio
import gc
import sys
import tracemalloc
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterable
from typing import Any, TypeVar

import pytest
from fastsse._fastsse import BatchIterator

_T = TypeVar("_T")


async def from_lists(batches: Iterable[list[_T]]) -> AsyncGenerator[list[_T], None]:
    for batch in batches:
        yield batch


async def drain(iterator: AsyncIterator[_T]) -> list[_T]:
    return [item async for item in iterator]


def run(awaitable: Awaitable[_T]) -> _T:
    async def main() -> _T:
        return await awaitable

    return asyncio.run(main())


class QueueSource:
    """An async iterator of batches that a test feeds: ``__anext__`` waits on the queue, so a
    cancelled wait takes nothing from it; ``None`` ends the iteration."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[Any] | None] = asyncio.Queue()
        self.waiting = asyncio.Event()
        self.closed = False

    def __aiter__(self) -> QueueSource:
        return self

    async def __anext__(self) -> list[Any]:
        self.waiting.set()
        batch = await self.queue.get()
        self.waiting.clear()
        if batch is None:
            raise StopAsyncIteration
        return batch

    async def aclose(self) -> None:
        self.closed = True


def test_items_in_order_across_batches_empty_ones_skipped() -> None:
    iterator = BatchIterator(from_lists([[1, 2], [], [3], [], [], [4, 5, 6]]))
    assert run(drain(iterator)) == [1, 2, 3, 4, 5, 6]


def test_the_end_is_stop_async_iteration_from_the_awaitable_every_time() -> None:
    async def main() -> None:
        iterator = BatchIterator(from_lists([["a"]]))
        assert await iterator.__anext__() == "a"
        for _ in range(2):
            awaitable = iterator.__anext__()  # the end is the awaitable's, as anext(it, d) needs
            with pytest.raises(StopAsyncIteration):
                await awaitable

    run(main())


def test_an_anext_never_awaited_takes_nothing() -> None:
    async def main() -> list[int]:
        iterator = BatchIterator(from_lists([[1, 2, 3]]))
        assert await iterator.__anext__() == 1
        iterator.__anext__()  # dropped: the item stays buffered
        return await drain(iterator)

    assert run(main()) == [2, 3]


def test_a_task_cancelled_before_its_anext_ran_takes_nothing() -> None:
    async def main() -> list[int]:
        iterator = BatchIterator(from_lists([[1, 2, 3]]))
        assert await iterator.__anext__() == 1
        task = asyncio.ensure_future(iterator.__anext__())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await drain(iterator)

    assert run(main()) == [2, 3]


def test_a_cancelled_refill_loses_and_duplicates_nothing() -> None:
    async def main() -> list[int]:
        source = QueueSource()
        iterator = BatchIterator(source)
        await source.queue.put([1, 2])
        got = [await iterator.__anext__()]
        got.append(await iterator.__anext__())
        task = asyncio.ensure_future(iterator.__anext__())
        await source.waiting.wait()  # the refill is suspended in the source
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await source.queue.put([3, 4])
        await source.queue.put(None)
        return got + await drain(iterator)

    assert run(main()) == [1, 2, 3, 4]


def test_a_cancelled_async_generator_source_ends_as_an_async_generator_would() -> None:
    # CancelledError passes through the source's generator, which then is finished: the
    # iteration ends there, as it would were the whole iteration one async generator.
    async def main() -> list[int]:
        gate = asyncio.Event()
        entered = asyncio.Event()

        async def source() -> AsyncGenerator[list[int], None]:
            yield [1]
            entered.set()
            await gate.wait()
            yield [2]

        iterator = BatchIterator(source())
        got = [await iterator.__anext__()]
        task = asyncio.ensure_future(iterator.__anext__())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return got + await drain(iterator)

    assert run(main()) == [1]


def test_an_error_of_the_source_comes_after_the_items_before_it() -> None:
    async def source() -> AsyncGenerator[list[str], None]:
        yield ["a", "b"]
        raise ValueError("broken")

    async def main() -> list[str]:
        got: list[str] = []
        iterator = BatchIterator(source())

        async def consume() -> None:
            async for item in iterator:
                got.append(item)

        with pytest.raises(ValueError, match="broken"):
            await consume()
        with pytest.raises(StopAsyncIteration):
            await iterator.__anext__()
        return got

    assert run(main()) == ["a", "b"]


def test_aclose_ends_the_iteration_closes_the_source_and_keeps_the_rest_for_clear() -> None:
    closed: list[bool] = []

    async def source() -> AsyncGenerator[list[int], None]:
        try:
            yield [1, 2, 3]
            yield [4]
        finally:
            closed.append(True)

    async def main() -> None:
        iterator = BatchIterator(source())
        assert await iterator.__anext__() == 1
        await iterator.aclose()
        assert closed == [True]
        with pytest.raises(StopAsyncIteration):
            await iterator.__anext__()
        # Nothing more is handed out, and nothing is lost: a stream takes these back.
        assert iterator.buffered == 2
        assert iterator.clear() == [2, 3]
        await iterator.aclose()  # idempotent
        with pytest.raises(StopAsyncIteration):
            await iterator.__anext__()

    run(main())


def test_aclose_during_a_refill_delivers_nothing_more() -> None:
    async def main() -> None:
        source = QueueSource()
        iterator = BatchIterator(source)
        task = asyncio.ensure_future(iterator.__anext__())
        await source.waiting.wait()
        await iterator.aclose()
        assert source.closed
        await source.queue.put([1, 2])  # arrives after the close: not handed out, kept
        with pytest.raises(StopAsyncIteration):
            await task
        with pytest.raises(StopAsyncIteration):
            await iterator.__anext__()
        assert iterator.clear() == [1, 2]

    run(main())


def test_buffered_counts_and_clear_removes_the_items_not_handed_out() -> None:
    async def main() -> None:
        iterator = BatchIterator(from_lists([[1, 2, 3], [4]]))
        assert iterator.buffered == 0
        assert iterator.clear() == []
        assert await iterator.__anext__() == 1
        assert iterator.buffered == 2
        assert iterator.clear() == [2, 3]
        assert iterator.buffered == 0
        assert await drain(iterator) == [4]  # the iteration goes on with the next batch
        assert iterator.buffered == 0

    run(main())


def test_any_item_is_a_value_through_either_completion_path() -> None:
    # Tuples and exceptions given to a StopIteration as they are would become its arguments
    # or the exception itself; None is a value like any other.
    items: list[Any] = [(1, 2), ValueError("an item"), None, (), "x"]

    async def main() -> list[Any]:
        return await drain(BatchIterator(from_lists([items])))

    assert run(main()) == items
    # The awaitable driven by next(), as a generator-based coroutine or a loop would.
    iterator: BatchIterator[Any] = BatchIterator(from_lists([]))
    iterator._load(list(items))
    for item in items[1:]:
        with pytest.raises(StopIteration) as stop:
            next(iterator.__anext__().__await__())
        assert stop.value.value is item


def test_a_stop_iteration_that_reached_python_code_keeps_its_value() -> None:
    # Each item leaves in a StopIteration of its own: one that was caught keeps its value.
    iterator: BatchIterator[str] = BatchIterator(from_lists([]))
    assert iterator._load(["a", "b", "c", "d"]) == "a"
    caught: list[StopIteration] = []
    for _ in range(3):
        try:
            next(iterator.__anext__().__await__())
        except StopIteration as stop:
            caught.append(stop)
    assert [stop.value for stop in caught] == ["b", "c", "d"]
    assert all(stop.__context__ is None for stop in caught)


def test_a_batch_may_be_any_iterable_and_is_copied_only_when_not_a_list() -> None:
    async def source() -> AsyncIterator[Any]:
        yield (1, 2)
        yield iter([3])

    assert run(drain(BatchIterator(source()))) == [1, 2, 3]

    async def not_iterable() -> AsyncIterator[Any]:
        yield 42

    with pytest.raises(TypeError):
        run(drain(BatchIterator(not_iterable())))


def test_awaiting_anext_results_out_of_turn_is_a_clear_error() -> None:
    async def main() -> None:
        iterator = BatchIterator(from_lists([[1], [2]]))
        assert await iterator.__anext__() == 1  # [2] is not fetched yet: nothing is buffered
        await iterator.__anext__()
        first, second = iterator.__anext__(), iterator.__anext__()
        with pytest.raises(StopAsyncIteration):
            await first
        with pytest.raises(StopAsyncIteration):
            await second
        iterator = BatchIterator(from_lists([[1, 2]]))
        assert await iterator.__anext__() == 1
        first, second = iterator.__anext__(), iterator.__anext__()  # one item for two
        assert await first == 2
        with pytest.raises(RuntimeError, match="await each __anext__"):
            await second

    run(main())


def test_constructor_takes_one_positional_argument() -> None:
    with pytest.raises(TypeError, match="one positional argument"):
        BatchIterator()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="one positional argument"):
        BatchIterator(batches=from_lists([]))  # type: ignore[call-arg]


def test_a_reference_cycle_through_the_source_is_collected() -> None:
    class Source:
        iterator: Any = None

        def __aiter__(self) -> Source:
            return self

        async def __anext__(self) -> list[int]:
            raise StopAsyncIteration

    source = Source()
    source.iterator = BatchIterator(source)
    assert gc.is_tracked(source.iterator)
    alive = weakref.ref(source)
    del source
    gc.collect()
    assert alive() is None


ITEMS = 100_000


def iterate_many(item: object) -> int:
    """Iterates ITEMS items (all ``item``) in batches of 100, awaiting a handler for each."""

    async def main() -> int:
        count = 0

        async def handle(value: object) -> None:
            nonlocal count
            count += value is item

        batches = ([item] * 100 for _ in range(ITEMS // 100))
        async for value in BatchIterator(from_lists(batches)):
            await handle(value)
        return count

    return asyncio.run(main())


def test_no_reference_is_leaked_per_item() -> None:
    item = object()
    before = sys.getrefcount(item)
    assert iterate_many(item) == ITEMS
    assert sys.getrefcount(item) == before


def test_memory_stays_flat_over_many_items() -> None:
    item = object()
    iterate_many(item)  # warms up caches and free lists
    tracemalloc.start()
    try:
        iterate_many(item)
        gc.collect()
        first, _ = tracemalloc.get_traced_memory()
        iterate_many(item)
        gc.collect()
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A leak of one 16-byte block per item would be 1.6 MB; asyncio keeps a few KiB about.
    assert second - first < 64 * 1024
