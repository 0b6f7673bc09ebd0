"""Many streams in one process, on one event loop, against a feed server in its own process
(benches/feed_server.py), each contender in a process of its own (benches/many_client.py), so
that the memory and the CPU time measured are the client's alone:

- idle streams (a ``: ping`` heartbeat every few seconds), 1,000 (and 10,000 with
  ``MANY_STREAMS_10K=1``, ten minutes more): resident memory per stream, Python-heap memory per
  stream (tracemalloc, at 1,000, in a run of its own: tracing costs memory itself), and the
  time until all are open (wall, and this process's CPU time, which the load of a shared
  machine does not inflate);
- 1,000 active streams, each sent the same EVENTS events at RATE events/s, one HTTP chunk per
  event, all starting at once when all are open: the client's CPU time per event
  (``time.process_time``) until every stream has received all of its events. A fixed amount
  of work at a fixed pace: CPU per event depends on the rate (a busier loop wakes for more
  events at a time), so a window of time, in which a slower contender receives fewer events,
  would not compare like with like.

Contenders: fastsse's ``AsyncEventStream(url)`` with no client (the default: on aiohttp's
session itself when the aiohttp extra is installed), the same given ``client=async_client()``
(one per 100 streams: httpx on httpx-aiohttp's transport), the same on plain httpx (as without
the extra), httpx-sse on an
``httpx.AsyncClient`` per 100 streams, and the bare loop (one aiohttp session, a
``fastsse.Parser`` per stream), which every ratio is against. They take turns, round after
round (``MANY_STREAMS_ROUNDS``, default 3: a run moves 20-30% on a loaded machine), and the
median of each figure is printed.

Run: ``python -m pytest benches/test_bench_many_streams.py -s`` (5-15 minutes, by the load).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from feed_server import serving

#: Each contender opens up to 10,000 streams, several times: minutes, not the suite's 300 s.
pytestmark = pytest.mark.timeout(3600)

CONTENDERS = ("fastsse", "fastsse-client", "fastsse-httpx", "httpx-sse", "bare")
BARE = "bare"
ROUNDS = int(os.environ.get("MANY_STREAMS_ROUNDS", "3"))
IDLE_COUNTS = [1000, 10_000] if os.environ.get("MANY_STREAMS_10K") else [1000]
HEARTBEAT = 5.0
ACTIVE_STREAMS = 1000
# events/s per active stream: 10,000 writes/s in all, which a Python feed server sustains on a
# shared 2-core machine (at 20 it fell behind, and a contender then reads several events per
# wakeup: cheaper per event for reasons that are not its own).
RATE = int(os.environ.get("MANY_STREAMS_RATE", "10"))
EVENTS = int(os.environ.get("MANY_STREAMS_EVENTS", "50"))  # per active stream: 5 s at RATE
CLIENT = Path(__file__).with_name("many_client.py")


@pytest.fixture(scope="module")
def heartbeat_feed() -> Iterator[str]:
    yield from serving("heartbeat", str(HEARTBEAT))


@pytest.fixture(scope="module")
def active_feed() -> Iterator[str]:
    yield from serving("fixed", str(EVENTS), str(RATE), str(ACTIVE_STREAMS))


def run_client(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(CLIENT), *args], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(f"many_client.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in result, result
    return result


def in_turns(*args: str) -> dict[str, list[dict[str, Any]]]:
    """Each contender's results, ``ROUNDS`` rounds, the order reversed every other round."""
    order = list(CONTENDERS)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    for _ in range(ROUNDS):
        for name in order:
            results[name].append(run_client(name, *args))
        order.reverse()
    return results


def median(results: list[dict[str, Any]], key: str) -> float:
    return statistics.median(result[key] for result in results)


def table(
    request: pytest.FixtureRequest,
    title: str,
    results: dict[str, list[dict[str, Any]]],
    columns: list[tuple[str, str, str]],
) -> None:
    """Prints ``columns`` ((key, heading, format)) per contender, each with its ratio to the
    bare loop's figure."""
    lines = [f"\n{title} (median of {ROUNDS}; ratio to the bare aiohttp + Parser loop)"]
    lines.append(f"  {'':<14}" + "".join(f"{heading:>26}" for _, heading, _ in columns))
    for name in CONTENDERS:
        cells = []
        for key, _, fmt in columns:
            value = median(results[name], key)
            ratio = value / median(results[BARE], key)
            cells.append(f"{format(value, fmt):>17} ({ratio:4.2f}x)")
        lines.append(f"  {name:<14}" + "".join(f"{cell:>26}" for cell in cells))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    for line in lines:
        if reporter is not None:
            reporter.write_line(line)
        else:
            print(line)


@pytest.mark.parametrize("count", IDLE_COUNTS)
def test_idle_streams(heartbeat_feed: str, request: pytest.FixtureRequest, count: int) -> None:
    results = in_turns("idle", str(count), heartbeat_feed)
    for name in CONTENDERS:
        for result in results[name]:
            result["rss_per_stream"] /= 1024
    columns = [
        ("rss_per_stream", "RSS/stream (KiB)", ".1f"),
        ("open_wall_s", "open, wall (s)", ".2f"),
        ("open_cpu_s", "open, CPU (s)", ".2f"),
    ]
    if count == IDLE_COUNTS[0]:
        # The Python heap per stream, in a run of its own: the same at any count, and tracing
        # 10,000 streams on httpx takes longer than the run it measures by far.
        for name in CONTENDERS:
            traced = run_client(name, "idle", str(count), heartbeat_feed, "--tracemalloc")
            for result in results[name]:
                result["traced_per_stream"] = traced["traced_per_stream"] / 1024
        columns.insert(1, ("traced_per_stream", "heap/stream (KiB)", ".1f"))
    table(request, f"{count:,} idle streams", results, columns)
    for name in CONTENDERS:
        assert median(results[name], "rss_per_stream") > 0


def test_active_streams(active_feed: str, request: pytest.FixtureRequest) -> None:
    results = in_turns("active", str(ACTIVE_STREAMS), active_feed, str(EVENTS))
    table(
        request,
        f"{ACTIVE_STREAMS:,} active streams, {EVENTS} events each at {RATE} events/s, "
        "one HTTP chunk per event",
        results,
        [
            ("cpu_per_event_us", "CPU/event (us)", ".1f"),
            ("events_per_s", "events/s", ",.0f"),
            ("core_share", "share of a core", ".0%"),
        ],
    )
    for name in CONTENDERS:
        assert median(results[name], "events_per_s") > 0
