"""The Rust core of fastsse (built by maturin from src/python/)."""

import sys
from collections.abc import AsyncIterator, Awaitable, Generator
from typing import Any, Generic, Literal, TypeVar, final

if sys.version_info >= (3, 10):
    from typing import TypeAlias
else:
    from typing_extensions import TypeAlias

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "RETRY_MAX_DIGITS", "BatchIterator", "Event", "Parser"]

_T = TypeVar("_T")

#: A decoded JSON value. (Private: stubtest checks that public stub names exist at runtime.)
_JSON: TypeAlias = dict[str, _JSON] | list[_JSON] | str | int | float | bool | None

DEFAULT_MAX_EVENT_SIZE: int
#: retry: values longer than this many digits (or than the process's int/str conversion limit,
#: sys.get_int_max_str_digits(), when lower) saturate at the largest value of that many digits.
RETRY_MAX_DIGITS: int

@final
class Event:
    """One Server-Sent Event; immutable. Attribute names match httpx-sse's ServerSentEvent.

    ``event`` (str; None or "" means "message"), ``data`` and ``id`` (str; None means ""),
    ``retry`` (the reconnection time in milliseconds: an int >= 0, or None). Wrong types raise
    TypeError, a negative retry ValueError. Fields are exact str and int objects: subclasses
    given to the constructor are copied."""

    @property
    def event(self) -> str: ...
    @property
    def data(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def retry(self) -> int | None: ...
    def __new__(
        cls,
        event: str | None = None,
        data: str | None = None,
        id: str | None = None,
        retry: int | None = None,
    ) -> Self: ...
    def json(self) -> _JSON:
        """The data decoded as JSON (orjson when installed, else json)."""
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Parser:
    """An incremental, spec-exact text/event-stream parser, for one stream and its reconnections.

    Keyword-only parameters:

    - ``last_event_id`` (str, default ""): the id to resume from; it is ``last_event_id`` and
      the id of the events until the stream sets another. An id holding U+0000 NULL, CR or LF
      is refused (ValueError): no stream can set one, and it could not be sent back as the
      Last-Event-ID header.
    - ``max_event_size`` (int >= 1, default DEFAULT_MAX_EVENT_SIZE, 16 MiB): the bound on one
      event's field lines, in bytes. A larger event is discarded as its bytes arrive (memory
      stays bounded) and parsing resumes after the blank line that ends it.
    - ``on_oversize`` ("error" or "skip", default "error"): "error" raises EventTooLargeError
      from the feed() that discarded an event; "skip" only counts it in ``oversized``.
    - ``comments`` (bool, default False): keep each comment line's text (": ping" gives
      "ping": the text after the colon and one optional space, cut to max_event_size bytes) for
      take_comments(), or for take_comments_at() with its place among the events in wire
      order. Off, comments cost nothing.
    - ``dataless_blocks`` (bool, default False): dispatch a block that carries an ``id:`` or
      ``retry:`` field but no ``data:`` as an event with empty data, as httpx-sse and httpx2 do
      (the spec dispatches nothing for it; the MCP SDK resumes from such a priming block's id).
      The event has the block's type (``event:``, else "message"), the last event ID after the
      block and the block's ``retry``. A block with only ``event:`` or unknown fields, or only
      comments, is still not dispatched; an ``id:`` holding NULL or a ``retry:`` that is not
      digits does not count, as it sets nothing. Off, the spec's rule holds, at no cost.

    Wrong types raise TypeError, wrong values ValueError, naming the parameter.

    Errors raised while a chunk's events are built (EventTooLargeError, or a MemoryError) come
    after the whole chunk is parsed and carry its completed events in ``.events``."""

    def __new__(
        cls,
        *,
        last_event_id: str = "",
        max_event_size: int = 16777216,
        on_oversize: Literal["error", "skip"] = "error",
        comments: bool = False,
        dataless_blocks: bool = False,
    ) -> Self: ...
    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Parse a chunk split anywhere; return the events it completes, in order."""
    def finish(self) -> list[Event]:
        """End of stream: drop an unterminated event; ready for a new connection."""
    def take_comments(self) -> list[str]:
        """The comments fed since the last call, in order, and forgets them (always empty
        unless the parser was made with comments=True)."""
    def take_comments_at(self) -> list[tuple[int, str]]:
        """The comments fed since the last take, in order, as ``(position, text)``, and forgets
        them. ``position`` is the number of events that came before the comment in the list its
        feed() returned (or its EventTooLargeError's ``.events``): where it belongs among them,
        in wire order."""
    @property
    def last_event_id(self) -> str:
        """Kept across finish() and reconnections, as browsers do (the spec's letter resets it
        per stream), so that resuming works."""
    @property
    def retry(self) -> int | None: ...
    @property
    def pending(self) -> bool:
        """An event has begun (a field or part of a line arrived) and not yet ended."""
    @property
    def oversized(self) -> int: ...
    @property
    def dataless_blocks(self) -> bool:
        """Whether blocks without data are dispatched (see ``dataless_blocks`` above)."""
    @property
    def max_event_size(self) -> int: ...

@final
class BatchIterator(Generic[_T]):
    """The items of an async iterator of lists, one by one, each handed out without suspending
    while a list is buffered. aclose() ends the iteration and closes batches; the items still
    buffered stay for clear().

    ``__anext__`` returns the iterator itself while an item is buffered: awaiting that takes
    the item (await each ``__anext__()`` once, in order, as ``async for`` and ``anext`` do)."""

    def __new__(cls, batches: AsyncIterator[list[_T]], /) -> Self: ...
    def __aiter__(self) -> Self: ...
    def __anext__(self) -> Awaitable[_T]: ...
    def __await__(self) -> Generator[Any, None, _T]: ...
    def __next__(self) -> _T: ...
    def aclose(self) -> Awaitable[None]:
        """End the iteration now (buffered items stay for clear()); the awaitable closes batches."""
    def clear(self) -> list[_T]:
        """Remove and return the buffered items (those not handed out yet), as a list."""
    @property
    def buffered(self) -> int:
        """How many items are buffered: received, not handed out yet."""
    def _load(self, batch: list[_T], /) -> _T:
        """Buffer a non-empty batch and return its first item (for refill)."""
