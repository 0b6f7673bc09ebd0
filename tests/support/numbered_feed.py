"""A resumable feed for SSEServer: events with ids 1..total that honours Last-Event-ID.

Each request gets the events after the id it sends (all of them without one), ``per_write``
events per write, then the body ends (the client reconnects and resumes); once the client has
every event, the answer is 204, which ends a fastsse stream for good.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Callable

from fastsse.testing import Action, RecordedRequest, Response, delay, event


def numbered_feed(
    total: int, *, per_write: int = 100, pause: float = 0.0, per_response: int | None = None
) -> Callable[[RecordedRequest], Response]:
    """The handler of the feed; ``pause`` seconds between writes, at most ``per_response``
    events in one response (None: all the rest)."""

    def respond(request: RecordedRequest) -> Response:
        start = int(request.last_event_id or 0)
        if start >= total:
            return Response(204)
        stop = total if per_response is None else min(total, start + per_response)
        return Response(body=_writes(start + 1, stop, per_write, pause))

    return respond


def _writes(first: int, last: int, per_write: int, pause: float) -> Iterator[Action]:
    for start in range(first, last + 1, per_write):
        if pause and start != first:
            yield delay(pause)
        stop = min(last, start + per_write - 1)
        yield b"".join(event(f"payload {i}", id=str(i)) for i in range(start, stop + 1))
