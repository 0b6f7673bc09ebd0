"""A feed server in its own process, so that a benchmark's CPU time is the client's alone.

``python feed_server.py EVENTS RATE`` serves, on every path, EVENTS events with ids (1..EVENTS)
at RATE events/s (0: as fast as the client reads), prints its port, and stops when its stdin
closes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from fastsse.testing import Action, Response, SSEServer, delay


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


def main(events: int, rate: int) -> None:
    data = corpus(events)

    def respond(request: object) -> Response:
        if rate:
            return Response(body=paced(data, events, rate))
        return Response.stream_bytes(data, 16 * 1024)

    with SSEServer(respond) as server:
        print(server.port, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
