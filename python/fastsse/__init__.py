"""fastsse: the fast, spec-exact Server-Sent Events client for Python, with a Rust parser."""

import contextlib as _contextlib

from fastsse._compat import EventSource, aconnect_sse, connect_sse
from fastsse._errors import (
    ContentTypeError,
    EventTooLargeError,
    FastSSEError,
    InvalidRequestError,
    LLMError,
    RetriesExhausted,
    SSEError,
    StreamInterruptedError,
    UnexpectedStatusError,
)
from fastsse._fastsse import DEFAULT_MAX_EVENT_SIZE, Event, Parser
from fastsse._httpx2_compat import sse
from fastsse._io.merge import Merge, merge
from fastsse._io.stream import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    JSON,
    AsyncEventStream,
    EventStream,
    Fault,
    FaultKind,
    StreamStats,
)
from fastsse._io.transport import async_client
from fastsse._policy import Backoff, Retry
from fastsse.consume.checkpoint import Checkpoint, SQLiteCheckpoint
from fastsse.consume.consumer import (
    Consumer,
    ConsumerStats,
    ErrorHandler,
    Handler,
    Overflow,
    QueueOverflowError,
)
from fastsse.redis.checkpoint import RedisCheckpoint

#: httpx-sse's name for an event; the same class, so code written for httpx-sse keeps working.
ServerSentEvent = Event

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_READ_TIMEOUT",
    "JSON",
    "AsyncEventStream",
    "Backoff",
    "Checkpoint",
    "Consumer",
    "ConsumerStats",
    "ContentTypeError",
    "ErrorHandler",
    "Event",
    "EventSource",
    "EventStream",
    "EventTooLargeError",
    "FastSSEError",
    "Fault",
    "FaultKind",
    "Handler",
    "InvalidRequestError",
    "LLMError",
    "Merge",
    "Overflow",
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
    "aconnect_sse",
    "async_client",
    "connect_sse",
    "merge",
    "sse",
]

# Tracebacks and reprs name a public class by the path users import it from
# (``fastsse.FastSSEError``), not by the private module that defines it.
for _name in __all__:
    _public = globals()[_name]
    if isinstance(_public, type) and _public.__module__.startswith("fastsse._"):
        # An immutable extension type keeps the name it was built with.
        with _contextlib.suppress(TypeError):
            _public.__module__ = __name__
del _name, _public
