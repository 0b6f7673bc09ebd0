"""``fastsse tail URL``: a curl for Server-Sent Events.

Prints each event as it arrives (flushed, so it works in a pipe), reconnects GET streams with
Last-Event-ID and says so on stderr, and ends with one clear line on stderr and exit status 1
on an HTTP or connection error, 130 on Ctrl-C, 0 when the stream ends or ``--max-events`` is
reached.

A server that cannot be reached at all is tried ``FIRST_CONNECTION_ATTEMPTS`` times before tail
gives up (most likely a wrong URL, or a server not started); once a connection has succeeded,
a GET stream is retried for as long as it takes, like ``tail -f``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from fastsse._errors import FastSSEError, RetriesExhausted, StreamInterruptedError
from fastsse._fastsse import Event
from fastsse._io.stream import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, EventStream
from fastsse._policy import Backoff, Retry
from fastsse.protocol import Fault, ResponseLike, _advice, redact, redact_url

#: Tries of the very first connection (the first one and its reconnects) before giving up.
FIRST_CONNECTION_ATTEMPTS = 3
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_PREFIX = "fastsse tail"


@dataclass(frozen=True)
class TailOptions:
    url: str
    headers: list[tuple[str, str]]
    method: str | None = None
    data: bytes | None = None
    last_event_id: str = ""
    json: bool = False
    raw: bool = False
    max_events: int | None = None
    reconnect: bool = True
    timeout: float | None = None


def run_tail(options: TailOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Runs ``fastsse tail``; returns the exit status."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    method = options.method or ("POST" if options.data is not None else "GET")
    reporter = _ReconnectReporter(err, options, method)
    try:
        stream = _open(options, method, reporter)
    except (TypeError, ValueError) as error:
        # An argument no stream can take (an empty URL, a method with a space, an id with a
        # line break): said as argparse says a usage error.
        err.write(f"{_PREFIX}: error: {redact(str(error), options.url)}\n")
        return EXIT_USAGE
    reporter.stream = stream
    show = _formatter(options)
    try:
        with _quiet_logger(), stream:
            for count, event in enumerate(stream, 1):
                out.write(show(event))
                out.flush()
                if options.max_events is not None and count >= options.max_events:
                    break
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as other tools do, and keep Python
        # from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        return EXIT_OK
    except (FastSSEError, httpx.HTTPError, OSError) as error:
        err.write(f"{_PREFIX}: error: {redact(_describe(error, options, method), options.url)}\n")
        err.flush()
        return EXIT_ERROR
    return EXIT_OK


def _open(options: TailOptions, method: str, reporter: _ReconnectReporter) -> EventStream:
    return EventStream(
        options.url,
        method=method,
        headers=options.headers,
        content=options.data,
        last_event_id=options.last_event_id,
        retry=_FirstConnectionRetry(),
        read_timeout=DEFAULT_READ_TIMEOUT if options.timeout is None else options.timeout,
        connect_timeout=DEFAULT_CONNECT_TIMEOUT if options.timeout is None else options.timeout,
        # GET streams reconnect; others (a POST) are never sent twice, as the stream's default.
        reconnect=None if options.reconnect else False,
        on_fault=reporter,
    )


def _formatter(options: TailOptions) -> Callable[[Event], str]:
    if options.raw:
        return _raw
    if options.json:
        return lambda event: _labelled(event, _pretty_json(event.data))
    return lambda event: _labelled(event, event.data)


def _labelled(event: Event, data: str) -> str:
    """The data, after the event's type (unless "message") and id (when it has one)."""
    labels = []
    if event.event != "message":
        labels.append(f"[{event.event}]")
    if event.id:
        labels.append(f"id={event.id}")
    if not labels:
        return data + "\n"
    separator = "\n" if "\n" in data else " "
    return " ".join(labels) + separator + data + "\n"


def _pretty_json(data: str) -> str:
    try:
        value = json.loads(data)
    except ValueError:
        return data  # Not JSON: shown as it is.
    return json.dumps(value, indent=2, ensure_ascii=False)


def _raw(event: Event) -> str:
    """The event's fields in the wire format, ending with the blank line."""
    lines = []
    if event.event != "message":
        lines.append(f"event: {event.event}")
    if event.id:
        lines.append(f"id: {event.id}")
    if event.retry is not None:
        lines.append(f"retry: {event.retry}")
    lines.extend(f"data: {line}" for line in event.data.split("\n"))
    return "\n".join(lines) + "\n\n"


def describe(error: BaseException) -> str:
    """One line for a command's error: the stream's words, without the Python-only remedies."""
    text = str(error) or type(error).__name__
    if isinstance(error, RetriesExhausted):
        text = text.partition(" (Retry(max_attempts=")[0]
    elif isinstance(error, StreamInterruptedError):
        text = text.partition("; it does not reconnect")[0]
    elif isinstance(error, httpx.HTTPError) and not isinstance(error, FastSSEError):
        text = f"{type(error).__name__}: {text}"
    return text


def _describe(error: BaseException, options: TailOptions, method: str) -> str:
    """One line: the error in the stream's words, its advice in the command line's."""
    text = describe(error)
    response = getattr(error, "response", None) if isinstance(error, FastSSEError) else None
    if response is not None:
        advice = _advice(response)  # The stream's advice, in keywords: said in options instead.
        if advice and advice in text:
            text = text.replace(advice, _cli_advice(response, options, method))
    return _cli_words(" ".join(text.split()), options, method)


def _retries(options: TailOptions, method: str) -> bool:
    """Whether tail asks again after a failure: as the stream decides for ``reconnect=None``."""
    return options.reconnect and method == "GET"


def _cli_advice(response: ResponseLike, options: TailOptions, method: str) -> str:
    """What to do about a status that ends the stream, in tail's options."""
    status = response.status_code
    if 300 <= status < 400:
        return f"; it redirects to {redact_url(response.headers.get('Location', ''))!r}"
    if status == 407:
        return "; check the proxy's credentials"
    if status in (401, 403):
        return "; check the credentials (-H 'Authorization: ...')"
    if status in (404, 410):
        return "; check the URL"
    if status == 405:
        return "; check the method (-X METHOD)"
    if status in (400, 422):
        return "; check the request's body and headers (-d, -H 'Content-Type: ...')"
    if status in (408, 429) or status >= 500:
        if method != "GET":
            return f"; tail never sends a {method} twice: run it again later"
        if not options.reconnect:
            return "; without --no-reconnect, tail retries it"
    return ""


def _cli_words(text: str, options: TailOptions, method: str) -> str:
    """A stream's message with its keyword arguments said as tail's options."""
    for python, cli in _CLI_WORDS:
        text = python.sub(cli, text)
    if _retries(options, method):
        return text
    # Advice to pass reconnect=True: tail never reconnects a POST; a GET reconnects unless
    # --no-reconnect was given.
    remedy = "" if method != "GET" else " (without --no-reconnect, tail resumes it)"
    return _RECONNECT_ADVICE.sub(remedy, text)


_CLI_WORDS = [
    (re.compile(r"\((connect|read)_timeout\)"), "(--timeout)"),
    (re.compile(r"\breconnect=False\b"), "--no-reconnect"),
    (re.compile(r" \(pass a larger max_event_size=[^)]*\)"), ""),
    (re.compile(r"; the \d+ events? this chunk completed (are|is) in \.events"), ""),
    (
        re.compile(r"\bexceeded max_event_size \((\d+) bytes\)"),
        r"exceeded tail's limit of \1 bytes",
    ),
]
_RECONNECT_ADVICE = re.compile(r" \(pass reconnect=True[^)]*\)")


class _ReconnectReporter:
    """Says on stderr why the stream reconnects, when, and the id it resumes from (the stream's
    ``on_fault`` hook); the ``fastsse`` logger is kept quiet meanwhile, so each fault is told
    once, in tail's words."""

    def __init__(self, err: TextIO, options: TailOptions, method: str) -> None:
        self.err = err
        self.options = options
        self.method = method
        self.stream: EventStream | None = None

    def __call__(self, fault: Fault, delay: float | None) -> None:
        if delay is None:
            return  # The stream ends with this error: run_tail reports it.
        message = _cli_words(fault.message, self.options, self.method)
        line = f"{_PREFIX}: {message}; reconnecting in {delay:.2f} s"
        last_event_id = self.stream.last_event_id if self.stream is not None else ""
        if last_event_id:
            line += f", resuming with Last-Event-ID {last_event_id}"
        self.err.write(line + "\n")
        self.err.flush()


@contextmanager
def _quiet_logger() -> Iterator[None]:
    logger = logging.getLogger("fastsse")
    propagate = logger.propagate
    logger.propagate = False  # No lastResort handler repeating what the reporter says.
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


@dataclass(frozen=True)
class _FirstConnectionRetry(Retry):
    """The default reconnect policy, except that a stream that never connected gives up after
    ``FIRST_CONNECTION_ATTEMPTS`` tries."""

    def start(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> Backoff:
        return _FirstConnectionBackoff(self, clock=clock, rng=rng)


class _FirstConnectionBackoff(Backoff):
    has_connected = False

    def connected(self) -> None:
        self.has_connected = True
        super().connected()

    def next_delay(self, cause: BaseException | None = None, **kwargs: Any) -> float:
        if not self.has_connected and self.attempts + 1 >= FIRST_CONNECTION_ATTEMPTS:
            raise RetriesExhausted(self.attempts, cause)
        return super().next_delay(cause, **kwargs)
