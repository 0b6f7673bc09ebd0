"""One contender of benches/test_bench_many_streams.py, in a process of its own (so that its
memory and CPU time are its own): opens COUNT streams to URL (a feed_server), measures, prints
one JSON line and exits.

``python many_client.py CONTENDER idle COUNT URL [--tracemalloc [TOP]]``: streams that receive
heartbeats only; resident memory and (with ``--tracemalloc``) Python-heap memory per stream,
and the time (wall and CPU) until all are open.

``python many_client.py CONTENDER active COUNT URL EVENTS``: streams that each receive EVENTS
events (one HTTP chunk each) from a ``feed_server.py fixed EVENTS RATE COUNT``, which starts
them all at once when all are open: the CPU time of this process per event, from then until
every stream has received all of its events. The work is the same for every contender (the
same events, at the same pace), so a slower contender cannot look cheaper per event for being
sent fewer of them.

Contenders: ``fastsse`` (``AsyncEventStream(url)``, no client: on aiohttp's session itself),
``fastsse-client`` (``client=fastsse.async_client()``, one per 100 streams: httpx on
httpx-aiohttp's transport), ``fastsse-httpx`` (no client, without the aiohttp extra: httpx's own
transport), ``httpx-sse`` (``aconnect_sse`` on an
``httpx.AsyncClient`` per 100 streams), ``bare`` (one aiohttp session and a ``fastsse.Parser``
per stream: the floor). Each counts events and does nothing else with them.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Awaitable
from typing import Any, Callable

import psutil

#: Connections opened at once: below the server's listen backlog (asyncio's default, 100).
WAVE = 100
#: Streams per httpx client for httpx-sse (httpx's default pool holds 100 connections).
PER_CLIENT = 100
HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
TIMEOUT = 300.0


class Counters:
    def __init__(self) -> None:
        self.connected = 0
        self.events = 0
        self.target = 0
        self.reached = asyncio.Event()
        self.error: BaseException | None = None
        #: The ``on_connect`` hook of every fastsse stream of the run: one object for all (a
        #: lambda per stream would be three more objects per stream than the bare loop keeps:
        #: the function, its cell and the tuple of its closure).
        self.on_connect: Callable[[object], None] = self._on_connect

    def _on_connect(self, _response: object) -> None:
        self.connect()

    def connect(self) -> None:
        self.connected += 1
        if self.connected >= self.target:
            self.reached.set()


Opener = Callable[[str, Counters], Awaitable[None]]


async def contender(name: str, count: int) -> tuple[Opener, Callable[[], Awaitable[None]]]:
    """The coroutine that reads one stream, and what to close at the end."""
    if name in ("fastsse", "fastsse-httpx"):
        import fastsse
        from fastsse._io import transport

        if name == "fastsse-httpx":
            transport.fast_transport_installed = lambda: False  # as without the extra
        if os.environ.get("MANY_STREAMS_PER_CLIENT"):  # to measure the pool's bound
            from fastsse._io import pool

            pool.STREAMS_PER_CLIENT = int(os.environ["MANY_STREAMS_PER_CLIENT"])

        async def fastsse_stream(url: str, counters: Counters) -> None:
            async with fastsse.AsyncEventStream(url, on_connect=counters.on_connect) as stream:
                async for _ in stream:
                    counters.events += 1

        async def nothing() -> None:
            pass

        return fastsse_stream, nothing

    if name == "fastsse-client":
        import fastsse

        shared = [fastsse.async_client() for _ in range(-(-count // PER_CLIENT))]
        handed = [0]

        async def fastsse_client_stream(url: str, counters: Counters) -> None:
            client = shared[handed[0] % len(shared)]
            handed[0] += 1
            async with fastsse.AsyncEventStream(
                url, client=client, on_connect=counters.on_connect
            ) as stream:
                async for _ in stream:
                    counters.events += 1

        async def close_shared() -> None:
            for client in shared:
                await client.aclose()

        return fastsse_client_stream, close_shared

    if name == "httpx-sse":
        import httpx
        from httpx_sse import aconnect_sse

        timeout = httpx.Timeout(30.0, read=300.0)  # httpx's default 5 s would end quiet feeds
        clients = [httpx.AsyncClient(timeout=timeout) for _ in range(-(-count // PER_CLIENT))]
        opened = [0]

        async def httpx_sse_stream(url: str, counters: Counters) -> None:
            client = clients[opened[0] % len(clients)]
            opened[0] += 1
            async with aconnect_sse(client, "GET", url) as source:
                counters.connect()
                async for _ in source.aiter_sse():
                    counters.events += 1

        async def close_clients() -> None:
            for client in clients:
                await client.aclose()

        return httpx_sse_stream, close_clients

    if name == "bare":
        import aiohttp
        from fastsse import Parser

        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(sock_connect=30.0, sock_read=300.0),
        )

        async def bare_stream(url: str, counters: Counters) -> None:
            async with session.get(url, headers=HEADERS) as response:
                counters.connect()
                parser = Parser()
                async for chunk in response.content.iter_any():
                    counters.events += len(parser.feed(chunk))

        return bare_stream, session.close

    raise SystemExit(f"unknown contender {name!r}")


def rss() -> int:
    gc.collect()
    rss_bytes: int = psutil.Process().memory_info().rss
    return rss_bytes


async def open_all(read: Opener, url: str, count: int, counters: Counters) -> list[Any]:
    """Opens ``count`` streams, ``WAVE`` at a time, each wave once the last one is open."""
    tasks = []
    for start in range(0, count, WAVE):
        counters.target = min(count, start + WAVE)
        counters.reached.clear()
        tasks.extend(
            asyncio.ensure_future(guarded(read, url, counters))
            for _ in range(counters.target - start)
        )
        await asyncio.wait_for(counters.reached.wait(), TIMEOUT)
        if counters.error is not None:
            raise counters.error
    return tasks


async def guarded(read: Opener, url: str, counters: Counters) -> None:
    """``read``, whose failure ends the measurement at once rather than by a timeout."""
    try:
        await read(url, counters)
    except asyncio.CancelledError:
        raise
    except BaseException as error:
        counters.error = error
        counters.reached.set()
        raise


async def main(name: str, mode: str, count: int, url: str, options: list[str]) -> dict[str, Any]:
    read, _ = await contender(name, count)
    # Warm up: imports, first connection, one-time structures; then measure from here.
    warm = Counters()
    # Not on ``/`` (another path of a ``fixed`` feed): the warm-up is not one of the streams the
    # feed waits for.
    warm_tasks = await open_all(read, url + "warm", 1, warm)
    for task in warm_tasks:
        task.cancel()
    await asyncio.gather(*warm_tasks, return_exceptions=True)
    trace = "--tracemalloc" in options
    result: dict[str, Any] = {"contender": name, "mode": mode, "count": count}
    counters = Counters()
    before = rss()
    if trace:
        tracemalloc.start()
        traced_before = tracemalloc.get_traced_memory()[0]
    if mode == "active":
        url += f"run-{os.getpid()}"  # A gate of the feed's own for this run's streams.
    cpu0, wall0 = time.process_time(), time.perf_counter()
    tasks = await open_all(read, url, count, counters)
    result["open_wall_s"] = time.perf_counter() - wall0
    result["open_cpu_s"] = time.process_time() - cpu0
    if mode == "idle":
        await asyncio.sleep(0.5)  # what each stream does once open (its first read) is done
        if trace:
            gc.collect()
            result["traced_per_stream"] = (
                tracemalloc.get_traced_memory()[0] - traced_before
            ) / count
            top = int(options[options.index("--tracemalloc") + 1]) if len(options) > 1 else 0
            if top:
                stats = tracemalloc.take_snapshot().statistics("lineno")
                result["top"] = [
                    f"{s.size / count:8.0f} B/stream {s.count / count:6.2f} blocks  {s.traceback}"
                    for s in stats[:top]
                ]
                files = tracemalloc.take_snapshot().statistics("filename")
                result["top_files"] = [
                    f"{s.size / count:8.0f} B/stream {s.count / count:6.2f} blocks  {s.traceback}"
                    for s in files[:top]
                ]
        result["rss_per_stream"] = (rss() - before) / count
    else:
        expected = count * int(options[0])
        cpu0, events0, wall0 = time.process_time(), counters.events, time.perf_counter()
        deadline = wall0 + TIMEOUT
        while counters.events < expected and time.perf_counter() < deadline:
            if counters.error is not None:
                raise counters.error
            await asyncio.sleep(0.01)  # Its cost is the same for every contender, and small.
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        events = counters.events - events0
        if events != expected:
            result["error"] = f"{events} events received of {expected}"
        result.update(
            events=events,
            cpu_per_event_us=cpu / max(events, 1) * 1e6,
            events_per_s=events / wall,
            core_share=cpu / wall,
        )
    if any(task.done() and task.exception() for task in tasks):
        failed = next(task for task in tasks if task.done() and task.exception())
        result["error"] = repr(failed.exception())
    return result


def sync_idle(count: int, url: str, stack_size: int) -> dict[str, Any]:
    """``count`` idle ``EventStream``s, each read by a thread of its own (the sync way)."""
    import threading

    import fastsse

    if stack_size:
        threading.stack_size(stack_size)
    if os.environ.get("MANY_STREAMS_PER_CLIENT"):
        from fastsse._io import pool

        pool.STREAMS_PER_CLIENT = int(os.environ["MANY_STREAMS_PER_CLIENT"])
    connected = threading.Semaphore(0)

    def read() -> None:
        with fastsse.EventStream(url, on_connect=lambda _: connected.release()) as stream:
            for _ in stream:
                pass

    def start(n: int) -> None:
        for _ in range(n):
            threading.Thread(target=read, daemon=True).start()
        for _ in range(n):
            if not connected.acquire(timeout=TIMEOUT):
                raise TimeoutError("a stream did not connect")

    start(1)  # warm up
    before = rss()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for first in range(0, count, WAVE):
        start(min(WAVE, count - first))
    result = {
        "contender": "fastsse-sync",
        "mode": "idle",
        "count": count,
        "stack_size": stack_size or "default",
        "open_wall_s": time.perf_counter() - wall0,
        "open_cpu_s": time.process_time() - cpu0,
    }
    time.sleep(0.5)
    result["rss_per_stream"] = (rss() - before) / count
    return result


if __name__ == "__main__":
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    name, mode, count, url, *rest = sys.argv[1:]
    if name == "fastsse-sync":
        print(json.dumps(sync_idle(int(count), url, int(rest[0]) if rest else 0)), flush=True)
        os._exit(0)
    loop = asyncio.new_event_loop()
    outcome = loop.run_until_complete(main(name, mode, int(count), url, rest))
    print(json.dumps(outcome), flush=True)
    # Closing thousands of connections measures nothing: leave that to the kernel.
    os._exit(0)
