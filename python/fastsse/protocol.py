"""fastsse.protocol: the decisions of an event stream, without I/O, in the manner of h11.

``StreamMachine`` decides everything about one Server-Sent Events stream: the request to send
(with ``Last-Event-ID`` once there is one), the verdict on each response, the events out of
each chunk of bytes (the Rust parser), whether, when and after how long to reconnect (the
backoff of ``fastsse.Retry``, the server's ``retry:``, ``Retry-After``), the stats, and the
faults and their messages (logged on the ``fastsse`` logger, with the URL's secrets hidden).
It opens no socket, never sleeps and catches no exception of an HTTP library: a driver asks it
what to do and tells it what happened. ``fastsse.AsyncEventStream`` and ``fastsse.EventStream``
are two such drivers, over httpx; this is how one is written for another transport, here a raw
aiohttp response (``ResponseHead`` gives the machine a response's head in httpx's names)::

    import asyncio
    import aiohttp
    from fastsse.protocol import BODY_PREVIEW, STOP, ResponseHead, StreamMachine, Verdict, Wait


    async def events(session: aiohttp.ClientSession, url: str):
        machine = StreamMachine(url)
        while True:
            action = machine.next_action()  # Send, Wait or STOP; raises the stream's error
            if action is STOP:
                return
            if isinstance(action, Wait):
                await asyncio.sleep(action.seconds)
                continue
            try:
                async with session.request(
                    action.method, action.url, headers=action.str_headers
                ) as resp:
                    head = ResponseHead(resp.status, resp.headers, resp.url, resp.reason)
                    verdict = machine.response(head)
                    if verdict is Verdict.PREVIEW:  # not a stream: the error or retry
                        machine.refused(await resp.content.read(BODY_PREVIEW))
                    elif verdict is Verdict.STREAM:
                        async for chunk in resp.content.iter_any():
                            for event in machine.feed(chunk):
                                yield event
                            while machine.has_deferred_work:  # comments, in wire order
                                for event in machine.next_segment():
                                    yield event
                        machine.ended()
            except aiohttp.ClientConnectorError as error:
                machine.failed("connect", error)
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                machine.failed("broken", error)
            finally:
                machine.end_response()

The steps, and what the driver tells the machine:

    action = machine.next_action()       # Send(method, url, headers), Wait(seconds) or STOP;
                                         # raises the stream's final error (a FastSSEError)
    verdict = machine.response(response) # headers arrived: STREAM, PREVIEW or STOP
    machine.refused(body)                # PREVIEW: the body's first bytes (BODY_PREVIEW);
                                         # raises when the status ends the stream
    events = machine.feed(chunk)         # a chunk of the body: deliver these events, then,
    machine.next_segment()               # while has_deferred_work: the chunk's comments to
                                         # on_comment, and the events that follow them
    machine.ended()                      # the server ended the body cleanly
    machine.failed(kind, error)          # the attempt or the connection failed (a FaultKind)
    machine.raised(error)                # anything else the driver's step raised: final
    machine.end_response()               # the response is over, whichever way (a finally)
    machine.close() / machine.interrupt()  # the user, from any thread or task

The driver only classifies its library's exceptions into a ``FaultKind`` (fastsse's own
``classify`` in ``fastsse._io.clients`` does it for httpx and httpx2); what to log, whether and
when to reconnect and what to raise is decided here. A driver that abandons an attempt (a
cancelled task) need not say so: the next ``next_action()`` counts it as a reconnect.
``machine.stats`` counts events, bytes, connections, reconnects and errors;
``machine.parser.last_event_id`` is the resume position; ``redact_url`` is how every message
shows a URL.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import re
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Literal, NoReturn, Optional, Protocol, TypeVar

from fastsse import _json
from fastsse._errors import (
    ContentTypeError,
    EventTooLargeError,
    FastSSEError,
    InvalidRequestError,
    RetriesExhausted,
    SSEError,
    StreamInterruptedError,
    UnexpectedStatusError,
)
from fastsse._fastsse import DEFAULT_MAX_EVENT_SIZE, Event, Parser
from fastsse._policy import Backoff, Retry, parse_retry_after

__all__ = [
    "BODY_PREVIEW",
    "DEFAULT_READ_TIMEOUT",
    "SECURE",
    "STOP",
    "Fault",
    "FaultKind",
    "ResponseHead",
    "ResponseLike",
    "Send",
    "StreamMachine",
    "StreamStats",
    "Verdict",
    "Wait",
    "body_text",
    "redact",
    "redact_url",
]

logger = logging.getLogger("fastsse")

#: No bytes for this long means the connection is dead. Generous, so that a feed that is
#: quiet for minutes (with sparse heartbeats) survives; httpx's own 5 s would kill it.
DEFAULT_READ_TIMEOUT = 300.0

#: How a connection attempt or a connection ended, as the driver classified it.
FaultKind = Literal[
    "refused",  # nothing listens on the port
    "dns",  # the host name does not resolve
    "connect_timeout",  # no answer to the connection attempt in time
    "connect",  # any other failure to connect (TLS, network unreachable, ...)
    "status",  # a response that asks to be retried (5xx, 408, 429)
    "read_timeout",  # no bytes for read_timeout seconds
    "broken",  # the connection was reset or cut mid-response
    "closed",  # the server ended the response cleanly
    "interrupted",  # interrupt() was called
    "invalid_request",  # the request itself cannot be sent (scheme, URL, headers)
    "redirect",  # the redirects do not end (a loop, an empty Location): the stream fails
    "cancelled",  # the attempt was abandoned from outside (a timeout around anext(), a task
    # cancelled): the machine finds out at the next action, and reconnects at once
]

#: What h11 accepts in a header value: no control characters but tab.
_LEGAL_HEADER_VALUE = re.compile(rb"[^\x00-\x08\x0a-\x1f\x7f]*")
#: How much of an error response's body the error quotes (and a driver reads).
BODY_PREVIEW = 512
#: What decode_event returns for data that is not JSON (None is valid JSON).
NOT_JSON: Any = object()

JSONErrorHandler = Callable[[Event, ValueError], None]
_E = TypeVar("_E", bound=Exception)

#: What a secret is shown as in messages (httpx's own convention for a URL's password).
SECURE = "[secure]"
#: A query parameter whose name contains one of these (``api_key``, ``access_token``...) holds
#: a credential: its value is never shown.
_SECRET_PARAMS = ("key", "token", "secret", "password", "signature", "sig", "auth")
#: How much of an error body's first line a message shows.
_BODY_TEXT_LIMIT = 200


def redact_url(url: object) -> str:
    """``url`` as text for a message or a log: a password in it, and the value of every query
    parameter whose name is or contains ``key``, ``token``, ``secret``, ``password``,
    ``signature``, ``sig`` or ``auth``, shown as ``[secure]``. Read as text, so that a URL too
    malformed to parse is redacted as well.

    >>> redact_url("https://me:pw@example.com/feed?api_key=abc&page=2")
    'https://me:[secure]@example.com/feed?api_key=[secure]&page=2'
    """
    text = str(url)
    text = _USERINFO.sub(rf"\1:{SECURE}@", text, count=1)
    path, question, rest = text.partition("?")
    if not question:
        return text
    query, hash_, fragment = rest.partition("#")
    query = _PARAM.sub(_redact_param, query)
    return f"{path}?{query}{hash_}{fragment}"


#: The user and password of a URL (the password up to the authority's last ``@``).
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*):([^/?#]*)@")
#: A query's ``name=value``.
_PARAM = re.compile(r"(?:^|(?<=[&;]))([^=&;]*)=([^&;]*)")


def _redact_param(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    return f"{name}={SECURE}" if value and _is_secret_name(name) else match.group(0)


def redact(text: str, url: object) -> str:
    """``text`` with the secrets ``redact_url`` hides in ``url`` shown as ``[secure]``: for a
    message that quotes the URL, or part of it, in words of its own (an error of a client
    library, say). Every URL in the text is shown as ``redact_url`` shows it; elsewhere a
    secret is hidden where it stands as a word of its own, so that a short value (``?key=1``)
    does not eat the digits of a port or a status."""
    return _redact_text(text, _secrets_of(url))


#: The shortest secret that is hidden outside a URL too.
_LOOSE_SECRET_LENGTH = 4
#: A URL quoted in a message (not the punctuation of the sentence around it).
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()]*[^\s'\"<>().,;:]")


def _redact_text(text: str, secrets: tuple[str, ...]) -> str:
    # A secret this short is a word of any message (``?key=1``, ``?sig=a``): hidden only where
    # it is part of a URL, which redact_url shows without it.
    loose = [re.escape(secret) for secret in secrets if len(secret) >= _LOOSE_SECRET_LENGTH]
    word = re.compile(rf"(?<![\w-])(?:{'|'.join(loose)})(?![\w-])") if loose else None
    shown, end = [], 0
    for url in _URL_IN_TEXT.finditer(text):
        between = text[end : url.start()]
        shown += [word.sub(SECURE, between) if word else between, redact_url(url.group(0))]
        end = url.end()
    rest = text[end:]
    shown.append(word.sub(SECURE, rest) if word else rest)
    return "".join(shown)


def _is_secret_name(name: str) -> bool:
    name = urllib.parse.unquote_plus(name).lower()
    return any(word in name for word in _SECRET_PARAMS)


def _secrets_of(url: object) -> tuple[str, ...]:
    """The secrets ``redact_url`` hides in ``url``, as they may appear in other text (an error
    of the client library that quotes the URL): raw and decoded, longest first."""
    text = str(url)
    found: set[str] = set()
    userinfo = _USERINFO.match(text)
    if userinfo is not None:
        found.add(userinfo.group(2))
    query = text.partition("?")[2].partition("#")[0]
    for match in _PARAM.finditer(query):
        if match.group(2) and _is_secret_name(match.group(1)):
            found.add(match.group(2))
    found |= {urllib.parse.unquote_plus(secret) for secret in found}
    found.discard("")
    return tuple(sorted(found, key=len, reverse=True))


@functools.lru_cache(maxsize=1024)
def _shown(url: object) -> tuple[str, tuple[str, ...]]:
    """``url`` redacted, and its secrets: once for all the machines of the same URL (thousands
    of streams often share a few)."""
    return redact_url(url), _secrets_of(url)


def body_text(body: bytes) -> str:
    """An error response's body as a message shows it: decoded (undecodable bytes replaced),
    its first line, cut to 200 characters; ``…`` marks what was left out."""
    text = body.decode("utf-8", errors="replace").strip()
    line, newline, _ = text.partition("\n")
    line = line.rstrip("\r ")
    if len(line) > _BODY_TEXT_LIMIT:
        return line[:_BODY_TEXT_LIMIT] + "…"
    return line + "…" if newline else line


class ResponseLike(Protocol):
    """What the machine reads of a response: httpx's and httpx2's have it; ``ResponseHead``
    makes it of any other (``headers.get(name, default)`` must ignore the name's case)."""

    @property
    def status_code(self) -> int: ...
    @property
    def reason_phrase(self) -> str: ...
    @property
    def headers(self) -> Any: ...
    @property
    def url(self) -> Any: ...


class _Headers(dict[str, str]):
    """Header values by lower-case name; ``get`` takes a name in any case."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class ResponseHead:
    """A response's head in the names the machine reads (``ResponseLike``), for a transport
    whose responses name them otherwise: ``ResponseHead(resp.status, resp.headers, resp.url,
    resp.reason)`` for aiohttp's. ``headers`` is a mapping or (name, value) pairs, as str;
    the last of a repeated name wins. It is what ``on_connect`` and the errors' ``response``
    get."""

    __slots__ = ("headers", "reason_phrase", "status_code", "url")

    def __init__(
        self,
        status_code: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        url: Any = "",
        reason_phrase: str | None = "",
    ) -> None:
        if isinstance(status_code, bool) or not isinstance(status_code, int):
            raise TypeError(f"status_code must be an int, got {status_code!r}")
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        self.status_code = status_code
        self.headers = _Headers((str(name).lower(), str(value)) for name, value in pairs)
        self.url = url
        self.reason_phrase = reason_phrase or ""

    def __repr__(self) -> str:
        return f"<ResponseHead [{self.status_code} {self.reason_phrase}]>"


@dataclass(frozen=True)
class Fault:
    """Why a connection attempt or a connection ended: what ``on_fault`` receives.

    ``kind`` is one of ``FaultKind``; ``message`` says it in words; ``error`` is the exception
    behind it (None for a clean end); ``response`` is the response it came from, if any;
    ``attempt`` is the number of the reconnect attempt that follows (1 for the first after a
    success, as the log says), 0 when none follows or an interrupt() reconnects at once.
    """

    kind: FaultKind
    message: str
    error: BaseException | None = None
    response: Any = None
    attempt: int = 0


#: What a machine holds of a chunk it is not handing out (one list for all, never changed:
#: thousands of idle streams need no list each).
_EMPTY: list[Any] = []
#: The headers every stream sends unless given others (see ``_request_headers``).
_STANDARD_HEADERS = ((b"Accept", b"text/event-stream"), (b"Cache-Control", b"no-cache"))


def _headers_to_send(given: Sequence[tuple[bytes, bytes]]) -> tuple[tuple[bytes, bytes], ...]:
    """The caller's headers but Last-Event-ID (the stream's own), with Accept and Cache-Control
    added unless given."""
    headers = [(k, v) for k, v in given if k.lower() != b"last-event-id"]
    names = {key.lower() for key, _ in headers}
    headers += [standard for standard in _STANDARD_HEADERS if standard[0].lower() not in names]
    return tuple(headers)


@functools.lru_cache(maxsize=64)
def _parser_factory(
    max_event_size: int,
    on_oversize: Literal["error", "skip"],
    comments: bool,
    dataless_blocks: bool,
) -> Callable[..., Parser]:
    """How a machine makes its parser (at the start, and for each response): one for all the
    machines with the same settings."""
    return functools.partial(
        Parser,
        max_event_size=max_event_size,
        on_oversize=on_oversize,
        comments=comments,
        dataless_blocks=dataless_blocks,
    )


@dataclass
class StreamStats:
    """Counters of one stream, across its reconnections."""

    events: int = 0
    bytes: int = 0
    connections: int = 0
    reconnects: int = 0
    #: Failed connections, and responses that led to a reconnect or ended the stream.
    errors: int = 0
    #: Unterminated events discarded because their connection ended (never delivered).
    dropped: int = 0
    #: Events discarded for exceeding ``max_event_size``.
    oversized: int = 0
    #: Events whose data was not valid JSON, when decoding JSON.
    json_errors: int = 0


@dataclass(frozen=True)
class Send:
    """Action: send this request (the driver adds the caller's request options)."""

    __slots__ = ("headers", "method", "url")

    method: str
    url: Any
    headers: list[tuple[bytes, bytes]]

    @property
    def str_headers(self) -> list[tuple[str, str]]:
        """``headers`` as str, for a library that takes no bytes: the bytes come back as they
        were when the library encodes them as UTF-8 with ``surrogateescape`` (aiohttp does)."""
        return [
            (key.decode("ascii"), value.decode("utf-8", "surrogateescape"))
            for key, value in self.headers
        ]


@dataclass(frozen=True)
class Wait:
    """Action: wait this many seconds (or until closed or interrupted), then ask again."""

    seconds: float


class _Stop:
    def __repr__(self) -> str:
        return "STOP"


#: Action: the stream is over; end the iteration.
STOP = _Stop()


class Verdict(enum.Enum):
    """What the driver does with a response's body."""

    STREAM = enum.auto()  # read it chunk by chunk into feed()
    PREVIEW = enum.auto()  # read its first bytes into refused(), then end the response
    STOP = enum.auto()  # close it: the stream is over


ConnectHook = Callable[[Any], None]
FaultHook = Callable[[Fault, Optional[float]], None]
CommentHook = Callable[[str], None]


#: Retry is immutable: every stream without its own shares one (its Backoff is per stream).
_DEFAULT_RETRY = Retry()


class StreamMachine:
    """Everything a stream decides: requests, verdicts, parsing, reconnects, messages.

    ``url`` is sent as the driver's library takes it (shown in messages through
    ``redact_url``). The options mean what ``fastsse.EventStream``'s of the same names do:
    ``method`` (a stream that is not a GET does not reconnect unless ``reconnect=True``),
    ``headers`` (bytes pairs; Accept and Cache-Control are added, a Last-Event-ID is where
    the stream starts), ``last_event_id``, ``retry`` (``fastsse.Retry``), ``read_timeout``
    (which the driver enforces; here it names it in messages), ``max_event_size``,
    ``on_oversize``, ``dataless_blocks`` (the parser's option, off as the spec says: a
    compatibility layer turns it on to dispatch blocks that set an id or a retry without data,
    as httpx-sse does), and the hooks ``on_connect(response)``, ``on_fault(fault, delay)``,
    ``on_comment(text)``. ``clock`` is the monotonic clock the backoff reads (a fake one in
    tests); the machine never sleeps on it.
    """

    # One per stream, and thousands of streams in a process: slots, not an instance dict
    # (more than 30 attributes, too many for a dict whose keys the instances share).
    __slots__ = (
        "_attempt_open",
        "_backoff",
        "_chunk_comments",
        "_chunk_events",
        "_clock",
        "_comments_out",
        "_current",
        "_cut_mid_event",
        "_deferred",
        "_delivered",
        "_empty_attempts",
        "_ending",
        "_events_out",
        "_headers",
        "_new_parser",
        "_no_event_yet",
        "_rare_steps",
        "_resume_at",
        "_retry_after",
        "_secrets",
        "_server_retry",
        "_skips_oversized",
        "_verdict",
        "_wants_comments",
        "closed",
        "done",
        "error",
        "has_deferred_work",
        "interrupted",
        "method",
        "on_comment",
        "on_connect",
        "on_fault",
        "parser",
        "read_timeout",
        "reconnect",
        "requests",
        "response_received",
        "retry",
        "shown_url",
        "stats",
        "url",
    )

    def __init__(
        self,
        url: Any,
        *,
        method: str = "GET",
        headers: Sequence[tuple[bytes, bytes]] = (),
        last_event_id: str = "",
        retry: Retry | None = None,
        reconnect: bool | None = None,
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        on_oversize: Literal["error", "skip"] = "error",
        dataless_blocks: bool = False,
        on_connect: ConnectHook | None = None,
        on_fault: FaultHook | None = None,
        on_comment: CommentHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.method = method.upper()
        self.url = url
        #: The URL as messages and logs show it (see ``redact_url``).
        self.shown_url, self._secrets = _shown(url)
        self.read_timeout = read_timeout
        #: The request's headers but Last-Event-ID: a tuple, and the same one for every stream
        #: given none (each request gets a list of its own).
        self._headers: tuple[tuple[bytes, bytes], ...] = _STANDARD_HEADERS
        if headers:
            for key, value in headers:
                if not _LEGAL_HEADER_VALUE.fullmatch(value):
                    raise ValueError(
                        f"headers: the value of {key.decode(errors='replace')} has control "
                        f"characters, which HTTP does not allow: {value!r}"
                    )
            # A Last-Event-ID header given by the caller is where the stream starts; from then
            # on the stream owns the header.
            given = [value for key, value in headers if key.lower() == b"last-event-id"]
            if given and not last_event_id:
                last_event_id = given[0].decode(errors="replace")
            self._headers = _headers_to_send(headers)
        # Re-sending a POST can repeat its side effects (an LLM call is billed again), so only
        # GET reconnects unless the caller asks.
        self.reconnect = self.method == "GET" if reconnect is None else reconnect
        # Without a hook the parser drops comments as they arrive, at no cost.
        self._new_parser = _parser_factory(
            max_event_size, on_oversize, on_comment is not None, dataless_blocks
        )
        self.parser = self._new_parser(last_event_id=last_event_id)
        #: Oversized events are counted and skipped silently: read the count after each chunk.
        self._skips_oversized = on_oversize == "skip"
        self.retry = retry or _DEFAULT_RETRY
        self._clock = clock
        self._backoff: Backoff | None = None  # see ``backoff``
        self.stats = StreamStats()
        self.on_connect = on_connect
        self.on_fault = on_fault
        self.on_comment = on_comment
        #: Whether the chunk just fed has more to hand out: comments for ``on_comment`` (with
        #: the events that follow them), or an error. Drivers call ``next_segment()`` while it
        #: is true; it stays false, at no cost per chunk, for a stream without comments hook.
        self.has_deferred_work = False
        #: The comment hook is given the comments, in their place among the events.
        self._wants_comments = on_comment is not None
        #: feed() has more to do than parse and count: skipped events to count, comments.
        self._rare_steps = self._wants_comments or self._skips_oversized
        #: The chunk being handed out in segments: its events, how many were handed out, its
        #: comments (each with the number of events before it) and how many were passed on.
        self._chunk_events: list[Event] = _EMPTY
        self._chunk_comments: list[tuple[int, str]] = _EMPTY
        self._events_out = 0
        self._comments_out = 0
        #: The latest response (None before the first).
        self.response_received: Any = None
        #: The response being read, from its headers to end_response().
        self._current: Any = None
        #: Requests sent so far.
        self.requests = 0
        #: close() was called: every next action is STOP.
        self.closed = False
        #: The stream ended for good (a 204, an error, a stream that does not reconnect).
        self.done = False
        #: A request was sent and the driver has not told how its attempt ended yet.
        self._attempt_open = False
        #: The error that ended the stream for good, raised again by every later
        #: ``next_action()`` (and by a driver asked to iterate again): the stream's own (a
        #: FastSSEError), or one that a hook raised (see ``raised``).
        self.error: Exception | None = None
        #: interrupt() was called and the connection it ends has not been replaced yet.
        self.interrupted = False
        self._server_retry: int | None = None
        #: The current response has delivered no event yet.
        self._no_event_yet = True
        self._cut_mid_event = False
        #: Consecutive attempts, up to the one that just ended, that delivered no event.
        self._empty_attempts = 0
        #: An attempt delivered an event since the last decision.
        self._delivered = False
        self._verdict = Verdict.STREAM
        self._retry_after: float | None = None
        self._deferred: EventTooLargeError | None = None
        #: How the last connection ended, until next_action() decides what follows.
        self._ending: Fault | None = None
        #: When the wait before the next request ends (the clock's time), until a request is
        #: sent: a wait cut short (a cancelled task, a timeout around anext()) goes on at the
        #: next action instead of letting the request go at once.
        self._resume_at: float | None = None

    @property
    def backoff(self) -> Backoff:
        """The reconnect delays' state under ``retry``: made when first needed (at the first
        reconnect or ``retry:`` field), as most streams never need one and thousands of idle
        streams would each keep one."""
        backoff = self._backoff
        if backoff is None:
            backoff = self._backoff = self.retry.start(clock=self._clock)
        return backoff

    # -- what to do next ---------------------------------------------------------------------

    def resume_from(self, last_event_id: str) -> None:
        """Start after ``last_event_id`` (sent as Last-Event-ID): only before the first request,
        since afterwards the stream's own position is what it resumes from."""
        if not isinstance(last_event_id, str):
            raise TypeError(f"last_event_id must be a str, got {last_event_id!r}")
        if any(c in last_event_id for c in "\r\n\0"):
            raise ValueError(f"no event can have the id {last_event_id!r} (CR, LF or NUL)")
        if self.requests:
            raise RuntimeError(
                "resume_from() is for a stream that has not connected yet; this one has sent "
                f"{self.requests} request(s) and resumes from its own last event id"
            )
        self.parser = self._new_parser(last_event_id=last_event_id)

    def next_action(self) -> Send | Wait | _Stop:
        """Send a request, wait, or stop; raises the stream's final error, and raises it
        (``error``) again on every later call: a stream never ends silently after an error."""
        if self.error is not None:
            raise self.error
        if self.closed or self.done:
            return STOP
        if self._attempt_open and self._ending is None:
            # The driver never said how the attempt ended: it was abandoned mid-way (an
            # exception that is no failure of the connection, such as a cancellation, went
            # through the driver).
            self._ending = Fault(
                "cancelled",
                "the attempt was cancelled from outside (a timeout or a cancelled task around "
                "the iteration)",
                None,
                None,
            )
        self._attempt_open = False
        ending, self._ending = self._ending, None
        if ending is not None:
            delay = self._decide(ending)
            if delay is None:
                self.done = True
                return STOP
            if delay > 0 and not self.interrupted:
                self._resume_at = self._clock() + delay
                return Wait(delay)
        if self._resume_at is not None and not self.interrupted:
            remaining = self._resume_at - self._clock()
            if remaining > 0:
                return Wait(remaining)
        self._resume_at = None
        self._check_may_send()
        self.interrupted = False
        self.requests += 1
        self._attempt_open = True
        return Send(self.method, self.url, self._request_headers())

    def _check_may_send(self) -> None:
        """Raises unless the request may be sent (again). A stream that does not reconnect (a
        POST, by default) is sent once: asking again could repeat its side effects."""
        if self.requests and not self.reconnect:
            raise self._final(
                StreamInterruptedError(
                    f"the {self.method} stream from {self.shown_url} was closed before its end, "
                    "and it does not reconnect (pass reconnect=True to resume it with "
                    "Last-Event-ID)"
                )
            )

    def _request_headers(self) -> list[tuple[bytes, bytes]]:
        # Bytes, so that an id outside Latin-1 reaches the server as the UTF-8 it was. HTTP
        # drops surrounding blanks from a header value, as browsers do before sending it.
        last_event_id = self.parser.last_event_id.encode().strip(b" \t")
        if not last_event_id:
            return list(self._headers)
        if _LEGAL_HEADER_VALUE.fullmatch(last_event_id):
            return [*self._headers, (b"Last-Event-ID", last_event_id)]
        logger.warning(
            "the event id %r has control characters, so it cannot be sent back in a "
            "Last-Event-ID header; reconnecting to %s without it",
            last_event_id,
            self.shown_url,
        )
        return list(self._headers)

    # -- what happened -------------------------------------------------------------------------

    def response(self, response: ResponseLike, *, shown: Any = None) -> Verdict:
        """The response's headers arrived: what to do with its body.

        ``shown``, when given, is what the caller sees of the response instead of ``response``
        (``response_received``, ``on_connect``, faults and errors): a driver that reads a light
        view of a response may show it as its client library's response."""
        self.response_received = self._current = response if shown is None else shown
        if self.closed:  # close() came while the request was on its way: nothing more.
            return Verdict.STOP
        status = response.status_code
        if status == 204:
            logger.info(
                "%s %s answered 204 No Content: the stream is over", self.method, self.shown_url
            )
            self.done = True
            return Verdict.STOP
        if status == 200 and _media_type(response) == "text/event-stream":
            if self._backoff is not None:  # A fresh one has no failures a long connection resets.
                self._backoff.connected()
            self.stats.connections += 1
            if self.on_connect is not None:
                self._call_hook(self.on_connect, self._current)
            return Verdict.STREAM
        retryable = status in (408, 429) or status >= 500
        if retryable and status in (429, 503):
            self._retry_after = parse_retry_after(response.headers.get("Retry-After", ""))
        self._verdict = Verdict.PREVIEW if retryable else Verdict.STOP
        return Verdict.PREVIEW

    def refused(self, body: bytes) -> None:
        """The first bytes of a response that is not a stream: raises its error when it ends
        the stream, else records it as the cause of the reconnect."""
        response = self.response_received
        error = self._response_error(response, body)
        if self._verdict is Verdict.STOP:  # Not retryable: the stream ends with it.
            self.stats.errors += 1
            self._report(Fault("status", str(error), error, response), None)
            raise self._final(error)
        status = f"{response.status_code} {response.reason_phrase}".strip()
        line = self.redact(body_text(body))
        words = f"answered {status}" + (f": {line}" if line else " (empty body)")
        self._ending = Fault("status", words, error, response)

    def feed(self, chunk: bytes) -> list[Event]:
        """A chunk of the body: the events it completes, in order.

        This runs once per chunk, the rest once per response: the server's ``retry:`` is read
        when the response ends (only the next reconnect uses it)."""
        stats = self.stats
        stats.bytes += len(chunk)
        parser = self.parser
        try:
            events = parser.feed(chunk)
        except EventTooLargeError as error:
            # Deliver what the chunk completed first; the error follows them.
            events = error.events
            self._deferred = error
            self.has_deferred_work = True
            stats.oversized = parser.oversized
        if events:
            stats.events += len(events)
            if self._no_event_yet:
                self._no_event_yet = False
                self._delivered = True
                if self._backoff is not None:  # A fresh one has no failures to forget.
                    self._backoff.progressed()
        if self._rare_steps:  # One test per chunk for all that most streams never need.
            return self._after_feed(events)
        # No events (a heartbeat): the shared empty list, not one an idle stream's driver keeps.
        return events or _EMPTY

    def _after_feed(self, events: list[Event]) -> list[Event]:
        if self._skips_oversized:
            self.stats.oversized = self.parser.oversized
        if self._wants_comments:
            return self._first_segment(events)
        return events

    def _first_segment(self, events: list[Event]) -> list[Event]:
        """The events of the chunk before its first comment; the rest waits for
        ``next_segment()``."""
        comments = self.parser.take_comments_at()
        if not comments:
            return events
        first = comments[0][0]
        self._chunk_events = events
        self._chunk_comments = comments
        self._events_out = first
        self._comments_out = 0
        self.has_deferred_work = True
        return events[:first] if first < len(events) else events

    def next_segment(self) -> list[Event]:
        """While ``has_deferred_work``, once the events handed out so far were delivered: hands
        the comments that come next on the wire to ``on_comment``, and returns the events that
        follow them, up to the next comment (possibly none). Once the chunk is exhausted,
        raises the error it carried, if any (see ``raise_deferred``). Once ``close()`` was
        called (by a hook, another task or thread), nothing more of the chunk is handed out:
        no comment to ``on_comment``, no event, no error.

        So comments and events reach the caller in wire order::

            events = machine.feed(chunk)
            deliver(events)
            while machine.has_deferred_work:
                deliver(machine.next_segment())
        """
        comments = self._chunk_comments
        at = self._events_out
        count = len(comments)
        hook = self.on_comment
        # close() is seen between any two steps: before a comment, and after its hook.
        while (
            not self.closed and self._comments_out < count and comments[self._comments_out][0] <= at
        ):
            text = comments[self._comments_out][1]
            self._comments_out += 1  # before the hook: one that raises is not called again
            if hook is not None:
                self._call_hook(hook, text)
        if self.closed:
            self._drop_chunk()
            return []
        events = self._chunk_events
        done = self._comments_out
        end = comments[done][0] if done < count else len(events)
        run = events[at:end]
        self._events_out = end
        if done < count:
            return run
        self._chunk_events = _EMPTY
        self._chunk_comments = _EMPTY
        self.has_deferred_work = self._deferred is not None
        if run:
            return run
        self._raise_oversized()
        return run

    def raise_deferred(self) -> list[Event]:
        """Hands the rest of the chunk just fed to the caller at once: passes its comments to
        ``on_comment`` and returns the events that follow them (which the caller delivers
        after those comments, or loses), then raises its error, if any. ``next_segment()``
        is the call that keeps events and comments in wire order; this one is for a driver
        that cannot deliver between comments.

        An oversized event with ``on_oversize="error"`` is final: the events its chunk
        completed were handed out first, then the stream is closed (``closed`` and ``done``),
        and its EventTooLargeError is raised here and again by every later ``next_action()``.
        (Skipping it would lose an event silently; ``on_oversize="skip"`` is that choice,
        made by the caller, and counted in ``stats.oversized``.)"""
        events: list[Event] = []
        for _ in range(len(self._chunk_comments) + 2):  # Each step passes a comment, or ends.
            if not self.has_deferred_work:
                break
            events += self.next_segment()
        return events

    def _raise_oversized(self) -> None:
        error, self._deferred = self._deferred, None
        if error is not None:
            self.has_deferred_work = False
            too_large = EventTooLargeError(
                f"{self.method} {self.shown_url}: {error} (pass a larger max_event_size=, or "
                "on_oversize='skip' to count and skip such events)",
                events=error.events,
                max_event_size=error.max_event_size,
                discarded=error.discarded,
            )
            too_large.response = self._current
            self.closed = True
            raise self._final(too_large) from None

    def _drop_chunk(self) -> None:
        """Forgets what the chunk just fed had left to hand out: comments, events, error."""
        self._deferred = None
        self.has_deferred_work = False
        self._chunk_events = _EMPTY
        self._chunk_comments = _EMPTY

    def end_response(self) -> None:
        """The response is over, whichever way (its end, a break, a close): an event it left
        unfinished is dropped, never delivered, nor joined to the next connection's bytes."""
        parser = self.parser
        if parser.pending:
            self.stats.dropped += 1
            self._cut_mid_event = True
        retry = parser.retry
        if retry is not None and retry != self._server_retry:
            self._server_retry = retry
            self.backoff.server_retry(retry)
        parser.finish()
        self._drop_chunk()
        self._no_event_yet = True
        self._current = None

    def ended(self) -> None:
        """The server ended the response's body cleanly."""
        if self.interrupted:
            self._ending = Fault("interrupted", "interrupted by interrupt()", None, self._current)
            return
        self._ending = Fault(
            "closed",
            "the server closed the stream (a stream is reconnected after a clean end, as "
            "browsers do; a 204 response or reconnect=False ends it instead)",
            None,
            self._current,
        )

    def failed(self, kind: FaultKind, error: BaseException) -> None:
        """The connection attempt or the connection failed; ``kind`` classifies ``error``."""
        if self.closed:
            return
        if self.interrupted:
            self._ending = Fault("interrupted", "interrupted by interrupt()", error, self._current)
            return
        self._ending = Fault(kind, self._describe(kind, error), error, self._current)

    def close(self) -> None:
        """The user closed the stream (from any thread or task): every next action is STOP,
        and nothing more of the chunk being handed out reaches the caller (``next_segment``)."""
        self.closed = True

    def raised(self, error: Exception) -> None:
        """The driver's step raised ``error``, which is no failure of the connection (not for
        ``failed()``): a hook's (the caller's ``auth``, say) or a bug's. The stream is over:
        every later ``next_action()`` raises ``error`` again, as it does the stream's own final
        errors, and those of the hooks the machine calls."""
        self._final(error)

    def redact(self, text: str) -> str:
        """``text`` with the secrets of the stream's URL (see ``redact_url``) as ``[secure]``:
        for text from elsewhere, such as a client library's error that quotes the URL."""
        return _redact_text(text, self._secrets)

    def interrupt(self) -> None:
        if not self.reconnect:
            raise StreamInterruptedError(
                f"the {self.method} stream from {self.shown_url} does not reconnect, so it "
                "cannot be interrupted (pass reconnect=True to allow it; close() ends it)"
            )
        self.interrupted = True

    # -- decisions -------------------------------------------------------------------------------

    def _decide(self, fault: Fault) -> float | None:
        """The delay before reconnecting after ``fault``, None when the stream is over, or
        raises the stream's error."""
        dropped_partial, self._cut_mid_event = self._cut_mid_event, False
        retry_after, self._retry_after = self._retry_after, None
        kind = fault.kind
        empty = self._empty_attempts = 0 if self._delivered else self._empty_attempts + 1
        self._delivered = False
        if kind == "interrupted" or (kind == "cancelled" and self.reconnect):
            self.stats.reconnects += 1
            logger.info("%s %s: %s; reconnecting now", self.method, self.shown_url, fault.message)
            self._report(fault, 0.0)
            return 0.0
        if kind != "closed":
            self.stats.errors += 1
        if kind == "invalid_request":
            invalid = InvalidRequestError(
                f"{self.method} {self.shown_url} cannot be sent: {fault.message} (check the URL, "
                "which needs http:// or https://, and the headers)"
            )
            self._fail(dataclasses.replace(fault, error=invalid), cause=fault.error)
        if kind == "redirect":
            redirect = UnexpectedStatusError(
                f"{self.method} {self.shown_url}: {fault.message}; check the URL, and the "
                "Location header of the server's redirect responses",
                response=fault.response,
                body=b"",
            )
            self._fail(dataclasses.replace(fault, error=redirect), cause=fault.error)
        if not self.reconnect:
            if kind == "closed" and not dropped_partial:
                return None
            if isinstance(fault.error, FastSSEError):
                self._fail(fault)
            if fault.response is None:  # Nothing was received: there is nothing to resume.
                ending, remedy = "got no response", "retry it"
            else:
                ending = "ended in the middle of an event" if kind == "closed" else "broke"
                remedy = "resume it with Last-Event-ID"
            interrupted = StreamInterruptedError(
                f"the {self.method} stream from {self.shown_url} {ending} ({fault.message}); it "
                f"does not reconnect (pass reconnect=True to {remedy})"
            )
            interrupted.response = fault.response
            self._fail(Fault(kind, fault.message, interrupted, fault.response), cause=fault.error)
        try:
            delay = self.backoff.next_delay(fault.error, retry_after=retry_after)
        except RetriesExhausted as exhausted:
            exhausted = RetriesExhausted(
                exhausted.attempts,
                fault.error,
                url=f"{self.method} {self.shown_url}",
                reason=fault.message,
                response=fault.response,
            )
            self._fail(Fault(kind, fault.message, exhausted, fault.response), cause=fault.error)
        self.stats.reconnects += 1
        most = self.retry.max_attempts
        of = "" if most is None else f" of {most}"
        attempt = self.backoff.attempts
        # A clean end is how many servers rotate connections: worth a WARNING only when the
        # attempt it ends is the second in a row that delivered nothing.
        level = logging.INFO if kind == "closed" and empty < 2 else logging.WARNING
        logger.log(
            level,
            "%s %s: %s; reconnect attempt %d%s in %.2f s",
            self.method,
            self.shown_url,
            fault.message,
            attempt,
            of,
            delay,
        )
        self._report(dataclasses.replace(fault, attempt=self.backoff.attempts), delay)
        return delay

    def _fail(self, fault: Fault, *, cause: BaseException | None = None) -> NoReturn:
        """Ends the stream with ``fault``'s error (a FastSSEError), raised from ``cause``."""
        error = fault.error
        assert isinstance(error, FastSSEError), error
        self._report(fault, None)
        self._final(error)
        if cause is not None and error.__cause__ is None:
            raise error from cause
        raise error

    def _report(self, fault: Fault, delay: float | None) -> None:
        if self.on_fault is not None:
            self._call_hook(self.on_fault, fault, delay)

    def _call_hook(self, hook: Callable[..., object], *args: Any) -> None:
        """Calls one of the caller's hooks: an exception it raises ends the stream for good."""
        try:
            hook(*args)
        except Exception as error:
            self._final(error)
            raise

    def _final(self, error: _E) -> _E:
        """Ends the stream for good with ``error``: the one place that makes an error final.
        Every later ``next_action()`` raises it again (the first, if several came)."""
        self.done = True
        if self.error is None:
            self.error = error
        return error

    def _describe(self, kind: FaultKind, error: BaseException) -> str:
        detail = self.redact(str(error) or type(error).__name__)
        if kind == "refused":
            return "connection refused (is the server up, and is the port right?)"
        if kind == "dns":
            return f"the host name does not resolve ({detail})"
        if kind == "connect_timeout":
            return "no answer to the connection attempt in time (connect_timeout)"
        if kind == "connect":
            return f"could not connect ({detail})"
        if kind == "read_timeout":
            return f"no data for {self.read_timeout:g} s (read_timeout)"
        if kind == "broken":
            return f"the connection broke ({detail})"
        if kind == "redirect":
            return f"the redirects do not end ({detail})"
        return detail

    def _response_error(self, response: Any, body: bytes) -> SSEError:
        status = response.status_code
        what = f"{status} {response.reason_phrase}".strip()
        text = self.redact(body_text(body))
        preview = f": {text}" if text else " (empty body)"
        request = f"{self.method} {redact_url(response.url)}"
        if 200 <= status < 300:
            content_type = response.headers.get("Content-Type", "")
            return ContentTypeError(
                f"{request} answered {what} with Content-Type {content_type!r}, not 200 with "
                f"text/event-stream{preview}; check that the URL is that of an event stream",
                response=response,
                content_type=content_type,
                body=body,
            )
        return UnexpectedStatusError(
            f"{request} answered {what}{preview}{_advice(response)}",
            response=response,
            body=body,
        )

    # -- JSON ----------------------------------------------------------------------------------

    def decode_json(self, events: list[Event], on_error: JSONErrorHandler | None) -> list[Any]:
        decoded = [self.decode_event(event, on_error) for event in events]
        return [value for value in decoded if value is not NOT_JSON]

    def decode_event(self, event: Event, on_error: JSONErrorHandler | None) -> Any:
        """The event's data decoded, or ``NOT_JSON`` (after counting and reporting it)."""
        try:
            return _json.loads(event.data)
        except ValueError as error:
            self.stats.json_errors += 1
            if on_error is None:
                logger.warning(
                    "skipped an event whose data is not JSON (id=%r, event=%r): %s; data=%r",
                    event.id,
                    event.event,
                    error,
                    event.data[:200],
                )
            else:
                on_error(event, error)
            return NOT_JSON


def _media_type(response: ResponseLike) -> str:
    content_type: str = response.headers.get("Content-Type", "")
    return content_type.partition(";")[0].strip().lower()


def _advice(response: ResponseLike) -> str:
    """What the user can do about a status that ends the stream."""
    status = response.status_code
    if 300 <= status < 400:
        location = redact_url(response.headers.get("Location", ""))
        return (
            f"; it redirects to {location!r}, and the client does not follow redirects "
            "(pass follow_redirects=True to the stream or the client)"
        )
    if status in (401, 403, 407):
        return "; check the credentials (headers= or auth=)"
    if status in (404, 410):
        return "; check the URL"
    if status == 405:
        return "; check the method (method=)"
    if status in (400, 422):
        return "; check the request's parameters and body"
    if status in (408, 429) or status >= 500:
        return "; it is retried only by a stream that reconnects (reconnect=True)"
    return ""
