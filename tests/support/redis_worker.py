"""A worker process for test_redis's kill tests: ``python this.py REDIS_URL STREAM CONSUMER
LOG HOLD_ID CLAIM_IDLE``. Its handler logs ``start ID`` and ``done ID`` (one write() each, kept
by the kernel across a kill -9) and never finishes the event whose id is HOLD_ID."""

from __future__ import annotations

import os
import sys

import anyio
from fastsse import Event
from fastsse.redis import RedisStreamConsumer


async def main(url: str, stream: str, consumer: str, log: str, hold: str, idle: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def handle(event: Event) -> None:
        os.write(fd, f"start {event.id}\n".encode())
        if event.id == hold:
            await anyio.sleep_forever()
        os.write(fd, f"done {event.id}\n".encode())

    worker = RedisStreamConsumer(
        handle,
        redis=url,
        stream=stream,
        group="workers",
        consumer=consumer,
        workers=4,
        claim_idle=float(idle),
    )
    await worker.run()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:7])
