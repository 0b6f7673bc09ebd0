"""fastsse: the fast, spec-exact Server-Sent Events client for Python, with a Rust parser."""

from fastsse._errors import EventTooLargeError, FastSSEError, SSEError
from fastsse._fastsse import DEFAULT_MAX_EVENT_SIZE, Event, Parser

#: httpx-sse's name for an event; the same class, so code written for httpx-sse keeps working.
ServerSentEvent = Event

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "Event",
    "EventTooLargeError",
    "FastSSEError",
    "Parser",
    "SSEError",
    "ServerSentEvent",
    "__version__",
]
