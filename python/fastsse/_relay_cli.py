"""``fastsse relay``: the command-line form of :class:`fastsse.redis.Relay`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import TYPE_CHECKING

import anyio
import httpx

from fastsse._errors import FastSSEError
from fastsse._tail import describe
from fastsse.protocol import redact

if TYPE_CHECKING:
    from fastsse.redis import Relay

#: Exit status after SIGINT (Ctrl-C), as shells report it; SIGTERM is a requested stop: 0.
_INTERRUPTED = 130
#: Exit status for a feed whose events carry no id: it cannot be relayed exactly once.
_NO_IDS = 2


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    relay = commands.add_parser(
        "relay",
        help="append an SSE feed to a Redis Stream, exactly once, with standby relays",
        description="Read the SSE feed at URL (resuming with Last-Event-ID) and append each "
        "event to the Redis Stream KEY (fields id, event, data, retry). Run it on several "
        "machines: one holds a lease and writes, the others take over within the lease TTL. "
        "Exits 0 when the feed ends (HTTP 204) or on SIGTERM, 130 on SIGINT, 1 when the feed "
        "fails for good or an id would move the checkpoint back, 2 for a feed without ids.",
    )
    relay.add_argument("url", metavar="URL", help="the SSE feed")
    relay.add_argument("--redis", required=True, metavar="REDIS_URL", help="redis://host:port/db")
    relay.add_argument("--stream", required=True, metavar="KEY", help="the Redis Stream key")
    relay.add_argument(
        "--cluster",
        action="store_true",
        help="REDIS_URL names a node of a Redis Cluster (KEY and the relay's keys share a slot)",
    )
    relay.add_argument(
        "--lease-ttl",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="a dead leader is replaced within this (default: 5)",
    )
    relay.add_argument(
        "--maxlen", type=_positive, metavar="N", help="cap the stream near N entries"
    )
    relay.add_argument(
        "-H",
        "--header",
        dest="headers",
        action="append",
        type=_header,
        default=[],
        metavar="'Name: value'",
        help="a request header for the feed (repeatable)",
    )
    relay.set_defaults(func=_relay_command)


def _relay_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s fastsse relay: %(message)s", stream=sys.stderr
    )
    # One line per feed request would drown the relay's own progress lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Imported here: `fastsse tail` needs none of it (redis-py itself is imported on use).
    from fastsse.redis import FeedWithoutIdsError, Relay

    try:
        relay = Relay(
            args.url,
            redis=args.redis,
            stream=args.stream,
            cluster=args.cluster,
            lease_ttl=args.lease_ttl,
            maxlen=args.maxlen,
            headers=args.headers,
        )
        return anyio.run(_run, relay)
    except FeedWithoutIdsError as error:
        print(f"fastsse relay: error: {error}", file=sys.stderr)
        return _NO_IDS
    except (FastSSEError, httpx.HTTPError, OSError) as error:
        print(f"fastsse relay: error: {_shown(describe(error), args)}", file=sys.stderr)
        return 1
    except (ImportError, ValueError) as error:
        print(f"fastsse relay: {_shown(str(error), args)}", file=sys.stderr)
        return 1


def _shown(text: str, args: argparse.Namespace) -> str:
    """``text`` with the secrets of the feed's URL and of the Redis URL as ``[secure]``."""
    return redact(redact(text, args.url), args.redis)


async def _run(relay: Relay) -> int:
    status = 0

    async def on_signals() -> None:
        nonlocal status
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for received in signals:
                status = _INTERRUPTED if received == signal.SIGINT else 0
                logging.getLogger("fastsse.relay").info(
                    "%s: stopping", signal.Signals(received).name
                )
                relay.stop()
                return

    error: Exception | None = None
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(on_signals)
        try:
            await relay.run()
        except Exception as raised:
            error = raised  # raised below: the task group would wrap it in an ExceptionGroup
        tasks.cancel_scope.cancel()
    if error is not None:
        raise error
    return status


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or name != name.strip():
        raise argparse.ArgumentTypeError(f"a header is 'Name: value', not {text!r}")
    return name, value.strip()


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0.1 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be at least 0.1 seconds, not {text}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value
