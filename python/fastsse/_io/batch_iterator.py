"""The slow paths of ``fastsse._fastsse.BatchIterator`` (src/python/batch_iterator.rs), one
coroutine each: what happens once per batch, not once per item, is written where it reads best."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

from fastsse._fastsse import BatchIterator

_T = TypeVar("_T")


async def refill(iterator: BatchIterator[_T], batches: AsyncIterator[list[_T]]) -> _T:
    """``__anext__`` when nothing is buffered: the first item of the next non-empty batch."""
    while True:
        batch = await batches.__anext__()
        if batch:
            return iterator._load(batch)


async def aclose(batches: Any) -> None:
    """``aclose()``: closes the batches' iterator when it can be closed."""
    close = getattr(batches, "aclose", None)
    if close is not None:
        await close()
