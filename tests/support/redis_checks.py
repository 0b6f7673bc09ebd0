"""What the Redis tests share: bounded waits, the ids a stream holds, the subprocess env."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable

#: Seconds any one wait of a Redis test may take at most.
TIMEOUT = 20.0
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


def entry_ids(client: Any, key: str) -> list[int]:
    """The ``id`` fields of the stream ``key``'s entries, as ints, in stream order."""
    return [int(fields[b"id"]) for _, fields in client.xrange(key)]
