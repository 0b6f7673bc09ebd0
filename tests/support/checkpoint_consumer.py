"""A consumer process for test_checkpoint's kill -9 test (run as ``python this.py URL DB LOG``).

It reads the feed with a Consumer checkpointed in SQLite; its handler appends each event's id
to LOG with one write() per event, which the kernel keeps when the process is killed.
"""

from __future__ import annotations

import os
import sys

import anyio
from fastsse import AsyncEventStream, Consumer, Event, Retry
from fastsse.consume.checkpoint import SQLiteCheckpoint

WORKERS = 4
QUEUE_SIZE = 64
COMMIT_EVERY = 50


async def main(url: str, database: str, log: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def handle(event: Event) -> None:
        await anyio.sleep(0)
        os.write(fd, f"{event.id}\n".encode())

    retry = Retry(initial=0.01, max_delay=0.05, jitter=False)
    async with AsyncEventStream(url, retry=retry) as stream:
        consumer = Consumer(
            stream,
            handle,
            workers=WORKERS,
            queue_size=QUEUE_SIZE,
            checkpoint=SQLiteCheckpoint(database, "feed"),
            commit_every=COMMIT_EVERY,
            commit_interval=0.05,
        )
        await consumer.run()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:4])
