"""The ``fastsse`` command (also ``python -m fastsse``).

``fastsse demo`` runs a live stream on loopback, cut twice mid-event and resumed, then compares
fastsse's throughput with pure Python's; ``fastsse bench`` times the parsers on the built-in
corpora and prints the comparison as a table.
"""

from __future__ import annotations

import argparse

from fastsse import _bench, _corpus, _relay_cli
from fastsse._demo import run_demo

#: ``--quick``: a quarter of each corpus and fewer, shorter repeats; a few seconds in all.
_QUICK = {"scale": 0.25, "repeat": 3, "min_time": 0.05}


def _bench_command(args: argparse.Namespace) -> int:
    settings = {"scale": args.scale, "repeat": args.repeat, "min_time": args.min_time}
    if args.quick:
        settings.update(_QUICK)
    _bench.run_bench(
        names=args.corpus or tuple(_corpus.GENERATORS),
        scale=float(settings["scale"]),
        chunk_size=args.chunk_size,
        repeat=int(settings["repeat"]),
        min_time=float(settings["min_time"]),
    )
    return 0


def _demo_command(args: argparse.Namespace) -> int:
    return run_demo(quick=args.quick)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastsse", description="The fast, spec-exact Server-Sent Events client."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    bench = commands.add_parser(
        "bench",
        help="time the parsers on built-in corpora and print a table",
        description="Parse built-in corpora with fastsse, httpx-sse's decoder (when installed) "
        "and the pure-Python parser; print events/s, MB/s and speed ratios.",
    )
    bench.add_argument(
        "--quick", action="store_true", help="smaller corpora and fewer repeats (seconds)"
    )
    bench.add_argument(
        "--corpus",
        action="append",
        choices=tuple(_corpus.GENERATORS),
        help="a corpus to run (repeatable; default: all)",
    )
    bench.add_argument(
        "--repeat", type=_positive_int, default=5, help="timed runs per parser; the best counts"
    )
    bench.add_argument(
        "--min-time",
        type=_positive_float,
        default=0.2,
        help="seconds each timed run lasts at least (default: 0.2)",
    )
    bench.add_argument(
        "--scale", type=_positive_float, default=1.0, help="corpus size factor (default: 1)"
    )
    bench.add_argument(
        "--chunk-size",
        type=_positive_int,
        default=_corpus.CHUNK_SIZE,
        help=f"bytes per feed() call (default: {_corpus.CHUNK_SIZE})",
    )
    bench.set_defaults(func=_bench_command)

    demo = commands.add_parser(
        "demo",
        help="a live loopback stream cut twice and resumed; fastsse beside pure Python",
        description="Start an SSE server on 127.0.0.1, stream LLM-like events, cut the "
        "connection mid-event twice and resume with Last-Event-ID; then compare fastsse's "
        "throughput with a pure-Python parser (and httpx-sse when installed).",
    )
    demo.add_argument("--quick", action="store_true", help="a smaller stream")
    demo.set_defaults(func=_demo_command)
    _relay_cli.add_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the ``fastsse`` command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.func(args)
    return status
