"""Instructions per event, counted by valgrind's cachegrind: what the stream's event-by-event
iteration costs over the bare ``Parser`` loop, on a plain ``httpx.AsyncClient``, exactly.

Timing cannot tell a few percent apart on a shared machine (two runs of the same loop differ by
up to 5% there); instruction counts do not move between runs. Each client runs in its own
process under cachegrind against a feed server in another (benches/feed_server.py), once for
one round and once for 1 + ROUNDS: the difference, per event, is what a round costs without the
process's start-up.

Run: ``python benches/instructions.py`` (needs ``valgrind``: ``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys

import httpx
from fastsse._tools import e2e
from feed_server import serving

#: The contenders, as in test_bench_e2e.py; the first is what the others are compared with.
CONTENDERS: dict[str, e2e.StreamClient] = {
    "Parser loop": e2e.parser_loop,
    "Parser loop (aiter_raw)": e2e.parser_loop_raw,
    "fastsse batches": e2e.fastsse_batches,
    "fastsse": e2e.fastsse_events,
}
CHUNKINGS = {"16 KiB chunks": "chunks", "chunk per event": "per-event"}
CORPUS_BYTES = 4_000_000


def count_round(url: str, contender: str, rounds: int) -> None:
    """In the process under cachegrind: ``rounds`` reads of the stream; prints the event count."""

    async def main() -> int:
        async with httpx.AsyncClient() as client:
            for _ in range(rounds):
                count = await CONTENDERS[contender](client, url)
        return count

    print(asyncio.run(main()))


def instructions(url: str, contender: str, rounds: int) -> tuple[int, int]:
    """(instructions, events of one round) of ``rounds`` rounds in a new process."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--client",
            url,
            contender,
            str(rounds),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-15:])
        raise RuntimeError(f"{contender} ({rounds} rounds) failed under valgrind:\n{tail}")
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr}")
    return int(found.group(1).replace(",", "")), int(done.stdout.split()[-1])


def per_event(url: str, contender: str, rounds: int) -> float:
    one, events = instructions(url, contender, 1)
    many, _ = instructions(url, contender, 1 + rounds)
    return (many - one) / rounds / events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds counted (default 2)")
    parser.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        url, contender, rounds = args.client
        count_round(url, contender, int(rounds))
        return
    if shutil.which("valgrind") is None:
        sys.exit("instructions.py needs valgrind (apt-get install valgrind)")
    print(
        "instructions per event (cachegrind), LLM token events, plain httpx.AsyncClient, "
        f"asyncio, {args.rounds} rounds (16 KiB chunks: {CORPUS_BYTES / 1e6:g} MB; chunk per "
        f"event: {CORPUS_BYTES / 4e6:g} MB)"
    )
    print(f"{'chunking':<16} {'contender':<24} {'instr/event':>12} {'speed vs Parser loop':>21}")
    for base_url in serving("llm", str(CORPUS_BYTES)):
        for chunking, path in CHUNKINGS.items():
            url = base_url + path
            counts = {name: per_event(url, name, args.rounds) for name in CONTENDERS}
            baseline = counts["Parser loop"]
            for name, count in counts.items():
                print(f"{chunking:<16} {name:<24} {count:>12,.0f} {baseline / count:>21.3f}")


if __name__ == "__main__":
    main()
