"""fastsse: the fast, spec-exact Server-Sent Events client for Python, with a Rust parser."""

from fastsse._consumer import Consumer, ConsumerStats, QueueOverflowError
from fastsse._errors import (
    ContentTypeError,
    EventTooLargeError,
    FastSSEError,
    RetriesExhausted,
    SSEError,
    StreamInterruptedError,
    UnexpectedStatusError,
)
from fastsse._fastsse import DEFAULT_MAX_EVENT_SIZE, Event, Parser
from fastsse._policy import Backoff, Retry
from fastsse._stream import DEFAULT_READ_TIMEOUT, AsyncEventStream, EventStream, StreamStats
from fastsse.checkpoint import Checkpoint, RedisCheckpoint, SQLiteCheckpoint

#: httpx-sse's name for an event; the same class, so code written for httpx-sse keeps working.
ServerSentEvent = Event

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_READ_TIMEOUT",
    "AsyncEventStream",
    "Backoff",
    "Checkpoint",
    "Consumer",
    "ConsumerStats",
    "ContentTypeError",
    "Event",
    "EventStream",
    "EventTooLargeError",
    "FastSSEError",
    "Parser",
    "QueueOverflowError",
    "RedisCheckpoint",
    "RetriesExhausted",
    "Retry",
    "SQLiteCheckpoint",
    "SSEError",
    "ServerSentEvent",
    "StreamInterruptedError",
    "StreamStats",
    "UnexpectedStatusError",
    "__version__",
]
