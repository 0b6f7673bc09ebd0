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
