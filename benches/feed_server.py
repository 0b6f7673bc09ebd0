"""A feed server in its own process, so that a benchmark measures the client's CPU time and
memory alone. It prints its port and stops when its stdin closes.

- ``python feed_server.py events N RATE``: on every path, N events with ids 1..N at RATE
  events/s (0: as fast as the client reads);
- ``python feed_server.py fixed N RATE STREAMS``: on each path, a ``: ready`` comment, then
  nothing until STREAMS requests have come to that path; then, from the same moment for every
  stream of the path, N events at RATE events/s (one write each), then silence (the connection
  stays open, so that no reconnect is measured); ``/warm`` is silent. The same number of events
  to each stream, at the same pace, for every contender (benches/many_client.py ``active``
  uses a path per run);
- ``python feed_server.py heartbeat SECONDS``: on every path, a stream that never ends and
  sends only a ``: ping`` comment every SECONDS;
- ``python feed_server.py llm BYTES``: LLM token events (fastsse._tools.corpus), BYTES of them
  in 16 KiB HTTP chunks on ``/chunks``, a quarter as many one HTTP chunk per event (~20x more
  chunks) on ``/per-event``, as in test_bench_e2e.py.

The file-descriptor limit is raised to its hard limit, for benchmarks of many connections.
Benchmarks start it with :func:`serving`.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from fastsse._tools.corpus import llm_tokens
from fastsse.testing import Action, RecordedRequest, Response, SSEServer, comment, delay, stall


def serving(*args: str) -> Iterator[str]:
    """Runs this script with ``args`` in its own process; yields its URL, then stops it."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__)), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    port = process.stdout.readline().strip()
    yield f"http://127.0.0.1:{port}/"
    process.stdin.close()
    process.wait(30)


def corpus(events: int) -> bytes:
    return b"".join(
        b'id: %d\nevent: token\ndata: {"index": %d, "text": "a token of text"}\n\n' % (i, i)
        for i in range(1, events + 1)
    )


def paced(data: bytes, events: int, rate: int) -> Iterator[Action]:
    """The corpus in writes of a hundredth of a second's worth of events."""
    per_write = max(1, rate // 100)
    blocks = data.split(b"\n\n")[:-1]
    for start in range(0, events, per_write):
        yield b"\n\n".join(blocks[start : start + per_write]) + b"\n\n"
        yield delay(per_write / rate)


def heartbeats(seconds: float) -> Iterator[Action]:
    while True:
        yield comment("ping")
        yield delay(seconds)


class Gate:
    """Opens once ``streams`` requests have come: the moment every stream starts from."""

    def __init__(self, streams: int) -> None:
        self.streams = streams
        self.arrived = 0
        self.start: float | None = None

    def arrive(self) -> None:
        self.arrived += 1
        if self.arrived == self.streams:
            # Time for the last stream's response to reach its client before any event.
            self.start = time.monotonic() + 0.5


def fixed(data: bytes, events: int, rate: int, gate: Gate) -> Iterator[Action]:
    yield comment("ready")
    deadline = time.monotonic() + 600
    while gate.start is None and time.monotonic() < deadline:
        yield delay(0.02)
    if gate.start is not None:
        yield delay(max(0.0, gate.start - time.monotonic()))
        yield from paced(data, events, rate)
    yield stall()


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(mode: str, *args: str) -> None:
    raise_fd_limit()
    try:  # The server's cost per write is not what is measured: the cheapest loop serves.
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    if mode == "heartbeat":
        seconds = float(args[0])

        def respond(request: RecordedRequest) -> Response:
            return Response(body=heartbeats(seconds))

    elif mode == "llm":
        size = int(args[0])
        by_path = {
            "/chunks": Response.stream_bytes(llm_tokens(size).data, 16 * 1024),
            "/per-event": Response.stream_chunks(llm_tokens(size // 4).per_event()),
        }

        def respond(request: RecordedRequest) -> Response:
            return by_path[request.path]

    elif mode == "fixed":
        events, rate = int(args[0]), int(args[1])
        data = corpus(events)
        gates: dict[str, Gate] = {}

        def respond(request: RecordedRequest) -> Response:
            if request.path == "/warm":
                return Response(body=[comment("ready"), stall()])
            gate = gates.setdefault(request.path, Gate(int(args[2])))
            gate.arrive()
            return Response(body=fixed(data, events, rate, gate))

    else:
        events, rate = int(args[0]), int(args[1])
        data = corpus(events)

        def respond(request: RecordedRequest) -> Response:
            if rate:
                return Response(body=paced(data, events, rate))
            return Response.stream_bytes(data, 16 * 1024)

    with SSEServer(respond) as server:
        print(server.port, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(*sys.argv[1:])
