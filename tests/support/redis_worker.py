"""A worker process for test_redis's kill tests: ``python this.py REDIS_URL STREAM CONSUMER
LOG HOLD_ID CLAIM_IDLE``. Its handler logs ``start ID`` and ``done ID`` (one write() each, kept
by the kernel across a kill -9) and never finishes the event whose id is HOLD_ID."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable
from typing import Any, Callable

import anyio
from fastsse import Event
from fastsse.redis import RedisStreamConsumer


async def run_logging_worker(
    url: str,
    stream: str,
    consumer: str,
    log: str,
    work: Callable[[Event, RedisStreamConsumer], Awaitable[None]],
    **options: Any,
) -> None:
    """Run a consumer of the group ``workers`` whose handler appends ``start ID`` to ``log``,
    awaits ``work(event, worker)``, then appends ``done ID`` (one write() each, so that a line
    the process wrote stays in the file however the process dies)."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def handle(event: Event) -> None:
        os.write(fd, f"start {event.id}\n".encode())
        await work(event, worker)
        os.write(fd, f"done {event.id}\n".encode())

    worker = RedisStreamConsumer(
        handle, redis=url, stream=stream, group="workers", consumer=consumer, **options
    )
    await worker.run()


async def main(url: str, stream: str, consumer: str, log: str, hold: str, idle: str) -> None:
    async def work(event: Event, worker: RedisStreamConsumer) -> None:
        if event.id == hold:
            await anyio.sleep_forever()

    await run_logging_worker(url, stream, consumer, log, work, workers=4, claim_idle=float(idle))


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:7])
