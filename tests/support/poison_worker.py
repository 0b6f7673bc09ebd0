"""A worker process for test_worker's poison test: ``python this.py REDIS_URL STREAM
CONSUMER LOG DIE_ON MAX_DELIVERIES CLAIM_IDLE WORKERS QUEUE_SIZE``. Its handler logs
``start ID`` and ``done ID`` (one write() each, kept by the kernel when the process dies) and
ends the process at once (``os._exit``, as a crash in native code would) on the event whose
id is DIE_ON, once every other handler call it made has ended and been acknowledged (so that
what stays pending is DIE_ON and the entries read ahead, whatever the timing)."""

from __future__ import annotations

import os
import sys

import anyio
from fastsse import Event
from fastsse.redis import RedisStreamConsumer

from support.redis_worker import run_logging_worker


async def main(
    url: str,
    stream: str,
    consumer: str,
    log: str,
    die_on: str,
    most: str,
    idle: str,
    workers: str,
    queue_size: str,
) -> None:
    async def work(event: Event, worker: RedisStreamConsumer) -> None:
        if event.id == die_on:
            stats = worker.stats
            for _ in range(2000):  # bounded: 10 s
                if stats.in_flight == 1 and stats.acknowledged == stats.handled + stats.failed:
                    break
                await anyio.sleep(0.005)
            os._exit(3)
        await anyio.sleep(0)  # let the other handlers of this process start too

    await run_logging_worker(
        url,
        stream,
        consumer,
        log,
        work,
        workers=int(workers),
        claim_idle=float(idle),
        max_deliveries=int(most),
        queue_size=int(queue_size),
    )


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:10])
