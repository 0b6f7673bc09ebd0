"""The one exception hierarchy of fastsse: everything it raises derives from FastSSEError."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from fastsse._fastsse import Event


class FastSSEError(Exception):
    """Base class of every error fastsse raises."""


class EventTooLargeError(FastSSEError, ValueError):
    """An event grew past ``max_event_size``.

    Its bytes were discarded as they arrived, so memory stayed bounded, and parsing resumes
    after the blank line that ends it. Nothing else is lost: ``events`` holds every event the
    same chunk completed, before and after the oversized one.
    """

    def __init__(
        self, message: str, *, events: list[Event], max_event_size: int, discarded: int = 1
    ) -> None:
        super().__init__(message)
        self.events = events
        self.max_event_size = max_event_size
        self.discarded = discarded


class SSEError(FastSSEError, httpx.TransportError):
    """The server's response is not a usable event stream (as httpx-sse's ``SSEError``)."""


class RetriesExhausted(FastSSEError):
    """The reconnect policy gave up: ``max_attempts`` consecutive reconnects all failed."""

    attempts: int
    last_cause: BaseException | None

    def __init__(self, attempts: int, last_cause: BaseException | None = None) -> None:
        detail = "" if last_cause is None else f"; last error: {_describe(last_cause)}"
        noun = "attempt" if attempts == 1 else "attempts"
        super().__init__(f"gave up after {attempts} reconnect {noun}{detail}")
        self.attempts = attempts
        self.last_cause = last_cause
        self.__cause__ = last_cause

    def __reduce__(self) -> tuple[type[RetriesExhausted], tuple[int, BaseException | None]]:
        # The message is derived from the attributes, so rebuild from them (the default
        # reduce would call __init__ with the message as ``attempts``).
        return type(self), (self.attempts, self.last_cause)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class UnexpectedStatusError(SSEError):
    """The server answered with a status that is not an event stream (a 4xx, a 5xx, ...).

    ``body`` holds the first bytes of the response body, which usually say why.
    """

    def __init__(self, message: str, *, status_code: int, body: bytes) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class ContentTypeError(SSEError):
    """The server answered 2xx, but not with ``200`` and ``Content-Type: text/event-stream``."""

    def __init__(self, message: str, *, status_code: int, content_type: str, body: bytes) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.content_type = content_type
        self.body = body


class StreamInterruptedError(SSEError):
    """A stream that does not reconnect (a POST, by default) broke before its end."""
