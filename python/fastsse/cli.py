"""The ``fastsse`` command (also ``python -m fastsse``).

``fastsse demo`` runs a live stream on loopback, cut twice mid-event and resumed, then compares
fastsse's throughput with pure Python's; ``fastsse bench`` times the parsers on the built-in
corpora and prints the comparison as a table; ``fastsse tail URL`` prints a live stream.
"""

from __future__ import annotations

import argparse
import math
import sys

from fastsse import _relay_cli, _tail

# The demo and bench tooling (fastsse._tools) is imported by its own command only: `fastsse tail`
# and `fastsse relay` never load it.

#: ``fastsse bench``'s sizes, unless given: in full, and ``--quick`` (a quarter of each corpus
#: and fewer, shorter repeats; a few seconds in all).
_FULL = {"scale": 1.0, "repeat": 5, "min_time": 0.2}
_QUICK = {"scale": 0.25, "repeat": 3, "min_time": 0.05}


def _bench_command(args: argparse.Namespace) -> int:
    from fastsse._tools.bench import run_bench
    from fastsse._tools.corpus import CHUNK_SIZE, GENERATORS

    unknown = [name for name in args.corpus or () if name not in GENERATORS]
    if unknown:
        print(
            f"fastsse bench: error: no corpus named {unknown[0]!r} (choose from "
            f"{', '.join(GENERATORS)})",
            file=sys.stderr,
        )
        return 2
    defaults = _QUICK if args.quick else _FULL
    settings = {
        name: default if getattr(args, name) is None else getattr(args, name)
        for name, default in defaults.items()
    }
    run_bench(
        names=args.corpus or tuple(GENERATORS),
        scale=float(settings["scale"]),
        chunk_size=args.chunk_size or CHUNK_SIZE,
        repeat=int(settings["repeat"]),
        min_time=float(settings["min_time"]),
    )
    return 0


def _demo_command(args: argparse.Namespace) -> int:
    from fastsse._tools.demo import run_demo

    return run_demo(quick=args.quick)


def _tail_command(args: argparse.Namespace) -> int:
    try:
        data = _request_body(args.data)
    except OSError as error:
        # One line, as for any usage error of tail's own: no traceback for a mistyped path.
        reason = error.strerror or str(error)
        print(f"fastsse tail: error: -d {args.data}: cannot read it: {reason}", file=sys.stderr)
        return _tail.EXIT_USAGE
    return _tail.run_tail(
        _tail.TailOptions(
            url=args.url,
            headers=args.header,
            method=args.method,
            data=data,
            last_event_id=args.last_event_id,
            json=args.json,
            raw=args.raw,
            max_events=args.max_events,
            reconnect=not args.no_reconnect,
            timeout=args.timeout,
        )
    )


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or name != name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', not {text!r}")
    return name, value.strip()


def _request_body(data: str | None) -> bytes | None:
    """``-d``'s value as curl reads it: ``@file`` is the file's content, ``@-`` standard input."""
    if data is None or not data.startswith("@"):
        return None if data is None else data.encode()
    if data == "@-":
        return sys.stdin.buffer.read()
    with open(data[1:], "rb") as file:
        return file.read()


def _positive_int(text: str) -> int:
    # argparse words a ValueError as "invalid _positive_int value": say what is expected.
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds greater than 0, not {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastsse", description="The fast, spec-exact Server-Sent Events client."
    )
    parser.add_argument("--version", action="version", version=f"fastsse {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

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
        metavar="{small,llm,64k,multiline}",
        help="a corpus to run (repeatable; default: all)",
    )
    bench.add_argument(
        "--repeat",
        type=_positive_int,
        help="timed runs per parser; the best counts (default: 5; --quick: 3)",
    )
    bench.add_argument(
        "--min-time",
        type=_seconds,
        help="seconds each timed run lasts at least (default: 0.2; --quick: 0.05)",
    )
    bench.add_argument(
        "--scale",
        type=_positive_float,
        help="corpus size factor (default: 1; --quick: 0.25)",
    )
    bench.add_argument(
        "--chunk-size",
        type=_positive_int,
        help="bytes per feed() call (default: 16384)",
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

    tail = commands.add_parser(
        "tail",
        help="print a live event stream, reconnecting as needed (a curl for SSE)",
        description="Print each event of the stream at URL as it arrives: its type (unless "
        "'message') and id, then its data. GET streams reconnect with Last-Event-ID (said on "
        "stderr); a server never reached is tried "
        f"{_tail.FIRST_CONNECTION_ATTEMPTS} times. Exit status: 0 at the end of the stream or "
        "after --max-events, 1 on an HTTP or connection error, 2 on a usage error, 130 on "
        "Ctrl-C.",
    )
    tail.add_argument("url", metavar="URL")
    tail.add_argument(
        "-H",
        "--header",
        action="append",
        type=_header,
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header (repeatable)",
    )
    tail.add_argument("-X", "--request", dest="method", metavar="METHOD", help="default: GET")
    tail.add_argument(
        "-d",
        "--data",
        metavar="DATA",
        help="request body (implies POST); @FILE reads a file, @- standard input",
    )
    tail.add_argument("--last-event-id", default="", metavar="ID", help="resume after this id")
    shown = tail.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="pretty-print data that is JSON")
    shown.add_argument(
        "--raw",
        action="store_true",
        help="print each event in the wire format, written again from its fields (event, id, "
        "retry, data): an id is repeated on the events that inherit it, comments are left out",
    )
    tail.add_argument("--max-events", type=_positive_int, metavar="N", help="exit after N events")
    tail.add_argument(
        "--no-reconnect", action="store_true", help="exit when the connection ends or fails"
    )
    tail.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="connect timeout, and longest silence before the connection counts as dead "
        "(default: 30 s to connect, 300 s of silence)",
    )
    tail.set_defaults(func=_tail_command)

    _relay_cli.add_command(commands)
    return parser


def _version() -> str:
    from fastsse import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """Runs the ``fastsse`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        # A usage error, as a missing argument is: the commands on stderr, and status 2.
        parser.print_help(sys.stderr)
        return 2
    status: int = args.func(args)
    return status
