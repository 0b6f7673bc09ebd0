"""The Rust core of fastsse (built by maturin from src/python.rs)."""

from typing import Any, Literal, final

DEFAULT_MAX_EVENT_SIZE: int
#: retry: values longer than this many digits saturate at 10**RETRY_MAX_DIGITS - 1.
RETRY_MAX_DIGITS: int

@final
class Event:
    """One Server-Sent Event; immutable. Attribute names match httpx-sse's ServerSentEvent."""

    @property
    def event(self) -> str: ...
    @property
    def data(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def retry(self) -> int | None: ...
    def __init__(
        self,
        event: str | None = None,
        data: str | None = None,
        id: str | None = None,
        retry: int | None = None,
    ) -> None: ...
    def json(self) -> Any:
        """The data decoded as JSON (orjson when installed, else json)."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Parser:
    """An incremental, spec-exact text/event-stream parser."""

    def __init__(
        self,
        *,
        last_event_id: str = "",
        max_event_size: int = ...,
        on_oversize: Literal["error", "skip"] = "error",
    ) -> None: ...
    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Parse a chunk split anywhere; return the events it completes, in order."""
    def finish(self) -> list[Event]:
        """End of stream: drop an unterminated event; ready for a new connection."""
    @property
    def last_event_id(self) -> str: ...
    @property
    def retry(self) -> int | None: ...
    @property
    def pending(self) -> bool:
        """An event has begun (a field or part of a line arrived) and not yet ended."""
    @property
    def oversized(self) -> int: ...
    @property
    def max_event_size(self) -> int: ...
