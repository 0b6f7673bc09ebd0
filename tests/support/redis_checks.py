"""What the Redis tests share: bounded waits, the entries a stream holds, the subprocess env, a
feed that waits for the test."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import anyio
from fastsse import Event
from fastsse.testing import Action, RecordedRequest, Response, delay, event

#: Seconds any one wait of a Redis test may take at most.
TIMEOUT = 20.0
#: The stream the tests relay to and consume.
KEY = "feed"
#: The environment of the relays and workers the tests run as subprocesses.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def wait_until(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll ``condition`` until it is true (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


async def await_until(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """wait_until for a test running in the event loop, so that the workers run meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await anyio.sleep(0.01)


def add_entries(client: Any, ids: range, key: str = KEY) -> None:
    """Add to the stream ``key`` an entry per id, as the relay writes them (data "payload <id>")."""
    for i in ids:
        client.xadd(key, {"id": str(i), "event": "message", "data": f"payload {i}"})


class HeldHandler:
    """A worker's handler that holds every event until ``release`` is set: ``started`` is set
    when the first one arrives, ``finished`` lists the ids it let go of, in order."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.release = anyio.Event()
        self.finished: list[str] = []

    async def __call__(self, event: Event) -> None:
        self.started.set()
        await self.release.wait()
        self.finished.append(event.id)


def entry_ids(client: Any, key: str) -> list[int]:
    """The ``id`` fields of the stream ``key``'s entries, as ints, in stream order."""
    return [int(fields[b"id"]) for _, fields in client.xrange(key)]


def feed_that_waits(total: int, first: int, go_on: threading.Event) -> Any:
    """A resumable feed of ids 1..total that, after ``first``, sends nothing more until
    ``go_on`` is set (polled by the server's loop, bounded by TIMEOUT)."""

    def body(start: int) -> Iterator[Action]:
        if start < first:
            yield from (event(f"payload {i}", id=str(i)) for i in range(start + 1, first + 1))
            deadline = time.monotonic() + TIMEOUT
            while not go_on.is_set() and time.monotonic() < deadline:
                yield delay(0.01)
            start = first
        for i in range(start + 1, total + 1, 10):
            yield b"".join(
                event(f"payload {j}", id=str(j)) for j in range(i, min(i + 10, total + 1))
            )

    def respond(request: RecordedRequest) -> Response:
        start = int(request.last_event_id or 0)
        return Response(204) if start >= total else Response(body=body(start))

    return respond
