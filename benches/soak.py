"""Soak at full size (tests/stream/test_soak.py runs the same code at sizes the suite affords):

    .venv/bin/python benches/soak.py [--reconnects 1000] [--events 10000000]

One stream through ``--reconnects`` reconnects, sync and async: file descriptors, threads and
asyncio tasks at the start, after 50 connections, at the last event and after close. Then
``--events`` events through one Parser and through one stream (one connection, sync and async):
RSS after the first tenth (warm-up), its peak after that, and at the end. Exits 1 if anything
grew: a descriptor, thread or task not given back, or RSS rising past --max-growth MiB.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fastsse.testing import SSEServer
from support import soak as soak_helpers

MIB = 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reconnects", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--max-growth", type=float, default=4.0, help="MiB of RSS growth allowed")
    args = parser.parse_args(argv)
    leaks: list[str] = []
    with SSEServer() as server:
        for kind, soak in (
            ("sync", soak_helpers.reconnect_soak_sync),
            ("async", soak_helpers.reconnect_soak_async),
        ):
            figures = soak(server, args.reconnects)
            print(
                f"{kind:>5} stream, {figures.reconnects:,} reconnects in {figures.seconds:.1f} s: "
                f"fds {figures.fds}, threads {figures.threads}, asyncio tasks {figures.tasks}"
            )
            if figures.reconnects != args.reconnects:
                leaks.append(f"{kind}: {figures.reconnects} reconnects, not {args.reconnects}")
            for name, counts in (("fds", figures.fds), ("threads", figures.threads)):
                if counts["closed"] != counts["start"] or counts["end"] > counts["warm"] + 2:
                    leaks.append(f"{kind} stream {name}: {counts}")
            if figures.tasks.get("closed") != figures.tasks.get("start"):
                leaks.append(f"{kind} stream tasks: {figures.tasks}")
        runs = [("Parser", lambda: soak_helpers.parser_soak(args.events))]
        for kind in ("sync", "async"):
            runs.append(
                (
                    f"{kind} stream",
                    lambda kind=kind: soak_helpers.stream_soak(server, args.events, kind),
                )
            )
        for name, run in runs:
            memory = run()
            print(
                f"{name:>12}: {memory.events:,} events in {memory.seconds:.1f} s "
                f"({memory.events / memory.seconds:,.0f}/s); RSS after warm-up "
                f"{memory.warm / MIB:.1f} MiB, peak after it {memory.peak / MIB:.1f} MiB "
                f"(+{memory.growth / MIB:.2f}), end {memory.end / MIB:.1f} MiB, "
                f"{memory.samples} samples"
            )
            if memory.growth > args.max_growth * MIB:
                leaks.append(f"{name}: RSS grew {memory.growth / MIB:.1f} MiB after warm-up")
    for leak in leaks:
        print("LEAK:", leak)
    print("no leak" if not leaks else f"{len(leaks)} leaks")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
