"""What the two stream drivers share: construction, validation, state and properties.

``StreamMachine`` (``fastsse.protocol``) makes every decision and does no I/O. ``AsyncEventStream``
(``_async/stream.py``, the source) and ``EventStream`` (``_sync/stream.py``, generated from it by
scripts/unasync.py) are its drivers: they move bytes and wait, and tell the machine what
happened; ``http.py`` translates httpx's errors into the machine's words.
"""

from __future__ import annotations

import functools
import http.cookiejar
import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Callable, Generic, Literal, Protocol, TypeVar, Union, cast

import httpx

from fastsse._fastsse import DEFAULT_MAX_EVENT_SIZE, Event
from fastsse._io import transport as _transport
from fastsse._io.clients import AsyncClient, SyncClient
from fastsse._io.http import (
    Socket,
    accepts,
    add_cookies,
    classes,
    classify,
    request_timeout,
    shown_of,
)
from fastsse._io.transport import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
from fastsse._policy import Retry
from fastsse.protocol import (
    Fault,
    FaultKind,
    Send,
    StreamMachine,
    StreamStats,
    redact,
    redact_url,
)

__all__ = [
    "JSON",
    "StreamBase",
    "Waker",
    "Woken",
    "failed",
    "finished",
]


#: A JSON value, as ``stream.json()`` yields them.
JSON = Union[dict[str, "JSON"], list["JSON"], str, int, float, bool, None]
HeaderTypes = Union[
    httpx.Headers,
    Mapping[str, str],
    Mapping[bytes, bytes],
    Sequence[tuple[str, str]],
    Sequence[tuple[bytes, bytes]],
]
QueryParamTypes = Union[httpx.QueryParams, Mapping[str, Any], Sequence[tuple[str, Any]], str]
CookieTypes = Union[httpx.Cookies, Mapping[str, str], http.cookiejar.CookieJar]
AuthTypes = Union[tuple[str, str], httpx.Auth, Callable[[httpx.Request], httpx.Request]]
TimeoutTypes = Union[float, httpx.Timeout]
Content = Union[str, bytes, None]

_Client = TypeVar("_Client", httpx.Client, httpx.AsyncClient)
_HTTPX_CLIENTS = (httpx.Client, httpx.AsyncClient)
#: The client the caller may pass: httpx's or httpx2's (which the stream uses as httpx's).
_Given = TypeVar("_Given", SyncClient, AsyncClient)
_Loop = TypeVar("_Loop")
#: The request or send options of a stream given none (never changed).
_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})


class Woken(Exception):
    """``close()`` or ``interrupt()`` ended what the reader was waiting for (the machine knows
    which)."""


class Waker(Protocol):
    """What the shared base needs of a flavour's waker (``_async/flavour.py``,
    ``_sync/flavour.py``): the socket in use, and a wake safe from any thread or task."""

    #: The socket of the connection in use, shut down by close() to wake a blocked read.
    socket: Socket | None

    def wake(self) -> None:
        """Ends what the reader is blocked in (a backoff wait, a read, a wait for headers), so
        that it sees at once what ``close()`` or ``interrupt()`` told the machine."""


class StreamBase(Generic[_Client, _Given]):
    """Construction, state and properties shared by the sync and async streams."""

    _waker: Waker
    #: Who iterates a stream ("task", "thread"), named in the error that a second one gets.
    _reader_noun: str
    #: The connection loop (a generator): requests, responses, parsing, reconnects.
    _loop: Any = None
    _client_classes: tuple[type, ...] = ()
    #: The cookies the stream's own responses set, on a shared client (see ``_keep_cookies``).
    _jar: Any = None
    #: The batch handed out last, whole or (by the async per-event iterator) event by event: the
    #: resume id is that of its event just before those the iterator still holds.
    _batch: Sequence[Event] = ()
    #: Events of a received batch not yet handed out one by one: iterating again (after a
    #: ``break``) starts with them, so that none is skipped. Made by the first iteration
    #: event by event that needs one (``_filled_backlog``): an empty deque costs 760 bytes per
    #: stream, and most streams never need one.
    _backlog: deque[Event] | tuple[()] = ()

    def __init__(
        self,
        url: httpx.URL | str,
        *,
        client: _Given | None = None,
        method: str = "GET",
        headers: HeaderTypes | None = None,
        params: QueryParamTypes | None = None,
        json: Any = None,
        content: Content = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | None = None,
        timeout: TimeoutTypes | None = None,
        follow_redirects: bool | None = None,
        extensions: Mapping[str, Any] | None = None,
        last_event_id: str = "",
        retry: Retry | None = None,
        reconnect: bool | None = None,
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
        connect_timeout: float | None = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        on_oversize: Literal["error", "skip"] = "error",
        on_connect: Callable[[httpx.Response], None] | None = None,
        on_fault: Callable[[Fault, float | None], None] | None = None,
        on_comment: Callable[[str], None] | None = None,
    ) -> None:
        """Open nothing yet: the first iteration sends the request.

        The request (each keyword as httpx's ``client.stream()`` takes it; the stream sends it
        again, with Last-Event-ID, on every reconnect):

        - ``url``: the event stream's URL (relative to the client's ``base_url`` if it has one).
        - ``client``: your own ``httpx.Client`` (``AsyncClient`` for ``AsyncEventStream``),
          whose timeouts, redirect policy, auth, cookies, headers and transport apply; it is
          not closed for you. Without one the stream shares a client (``DEFAULT_CONNECT_TIMEOUT``,
          redirects followed) with up to 99 other such streams of its event loop; the cookies
          its responses set are its own, sent again when it reconnects.
        - ``method`` (``"GET"``), ``headers``, ``params``, ``json``, ``content``, ``data``,
          ``files``, ``cookies``, ``extensions``: as in httpx. ``Accept: text/event-stream``
          and ``Cache-Control: no-cache`` are added unless given; a ``Last-Event-ID`` header
          is where the stream starts.
        - ``auth``, ``follow_redirects``, ``timeout``: as in httpx; None (the default) keeps
          the client's.

        Reconnecting:

        - ``reconnect``: whether to reconnect after the connection ends; None (the default)
          means yes for GET and no for other methods, whose side effects a re-sent request
          would repeat (a stream that does not reconnect raises StreamInterruptedError when it
          breaks mid-stream).
        - ``retry``: the backoff policy (``fastsse.Retry``: delays, ``max_attempts``).
        - ``last_event_id``: the id to resume after, sent on the first request.
        - ``read_timeout``: seconds without a byte (comments count) after which the connection
          counts as dead and is replaced; ``DEFAULT_READ_TIMEOUT`` (300 s) by default, whatever
          the client's read timeout; None waits for ever.
        - ``connect_timeout``: seconds to connect; None (the default) keeps the client's.

        Limits and hooks:

        - ``max_event_size``, ``on_oversize``: an event larger than this many bytes raises
          EventTooLargeError (``"error"``) or is counted in ``stats.oversized`` and skipped
          (``"skip"``); memory stays bounded either way. The error is final: the events its
          chunk completed come first, then the stream is closed and every later iteration
          raises the same error again.
        - ``on_connect``: ``on_connect(response)`` is called when a response is accepted as an
          event stream.
        - ``on_fault``: ``on_fault(fault, delay)`` is called when a connection attempt or a
          connection ends, with a ``Fault`` (kind, message, error, response, attempt);
          ``delay`` is the wait before the next attempt (0 after ``interrupt()``), or None
          when the stream ends with an error.
        - ``on_comment``: ``on_comment(text)`` is called with each comment line the server
          sends, such as heartbeats (``: ping`` gives ``"ping"``: the text after the colon and
          one space, cut to ``max_event_size`` bytes), in its place among the events (wire
          order). Without it, comments are dropped as they arrive, at no cost.

        The hooks run in the task or thread that iterates, before the stream goes on: keep
        them short. An exception a hook raises is final, as the stream's own errors are: it
        ends the stream, and every later iteration raises it again.

        Errors: a response that ends the stream (a 4xx, a body that is not an event stream),
        retries exhausted, a stream that does not reconnect and broke, a request that cannot
        be sent, an oversized event: each is final, raised by the iteration that meets it and
        again by every later one (``for``, ``anext()``, ``batches()``); a stream never ends
        silently after an error.

        Every failed attempt and every reconnect is also logged on the ``fastsse`` logger: at
        WARNING, but for a clean end that reconnects (INFO, unless it is the second attempt in
        a row that delivered nothing); a URL's password and credential-like query values show
        as ``[secure]``. Wrong types raise TypeError, wrong values ValueError, here and not
        later.
        """
        _validate(
            url, method, last_event_id, read_timeout, on_oversize, on_connect, on_fault, on_comment
        )
        if not (
            client is None
            and json is None
            and content is None
            and data is None
            and files is None
            and auth is None
            and timeout is None
            and follow_redirects is None
            and extensions is None
            and retry is None
            and reconnect is None
            and connect_timeout is None
        ):
            # Checked only when one is given: thousands of streams are made with none of them.
            _validate_options(
                self._client_classes,
                client=client,
                json=json,
                content=content,
                data=data,
                files=files,
                auth=auth,
                timeout=timeout,
                follow_redirects=follow_redirects,
                extensions=extensions,
                retry=retry,
                reconnect=reconnect,
                connect_timeout=connect_timeout,
            )
        try:
            # Each checked only when given: thousands of streams are made with none of them.
            raw_headers = httpx.Headers(headers).raw if headers is not None else []
            if params is not None:
                httpx.QueryParams(cast(Any, params))
            if cookies is not None:
                if not isinstance(cookies, (Mapping, Sequence, http.cookiejar.CookieJar)):
                    raise TypeError(f"got {cookies!r} as cookies")
                httpx.Cookies(cast(Any, cookies))
        except UnicodeEncodeError as error:
            raise ValueError(
                f"headers: a str value must be ASCII; pass bytes for any other value ({error})"
            ) from None
        except (TypeError, ValueError, AttributeError) as error:
            raise TypeError(
                "headers, params and cookies must each be a mapping or a sequence of "
                f"(name, value) pairs ({error})"
            ) from None
        if client is not None:
            _transport.warn_if_resending(client, f"{method.upper()} {redact_url(url)}")
        self._machine = StreamMachine(
            url,
            method=method,
            headers=raw_headers,
            last_event_id=last_event_id,
            retry=retry,
            reconnect=reconnect,
            read_timeout=read_timeout,
            max_event_size=max_event_size,
            on_oversize=on_oversize,
            on_connect=on_connect,
            on_fault=on_fault,
            on_comment=on_comment,
        )
        request_options = {
            key: value
            for key, value in (
                ("params", params),
                ("json", json),
                ("content", content),
                ("data", data),
                ("files", files),
                ("extensions", extensions),
            )
            if value is not None
        }
        self._cookies = cookies
        send_options: dict[str, Any] = {}
        if auth is not None:
            send_options["auth"] = auth
        if follow_redirects is not None:
            send_options["follow_redirects"] = follow_redirects
        # Most streams have neither: those share one empty mapping.
        self._request_options: Mapping[str, Any] = request_options or _NO_OPTIONS
        self._send_options: Mapping[str, Any] = send_options or _NO_OPTIONS
        # A Timeout of the client's library (httpx2's too) is kept: only its fields are read.
        self._timeout: Any = timeout
        if timeout is not None and not isinstance(timeout, classes("Timeout")):
            self._timeout = httpx.Timeout(timeout)
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._client: _Client | None = cast(Any, client)  # httpx2's works as httpx's
        self._owns_client = client is None
        self._delivered_id = last_event_id or self._machine.parser.last_event_id
        self._waker = self._new_waker()

    @property
    def last_event_id(self) -> str:
        """The id to resume from: that of the last event handed out, as the spec keeps it."""
        return self._delivered_id if self._backlog else self._machine.parser.last_event_id

    @property
    def stats(self) -> StreamStats:
        """Counters of events, bytes, connections, reconnects, errors, drops."""
        return self._machine.stats

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._machine.closed

    @property
    def response(self) -> httpx.Response | None:
        """The latest response: its ``status_code``, ``headers`` and ``url`` (after
        redirects). None until the first response arrives; it stays the last one received
        while the stream reconnects."""
        response: httpx.Response | None = self._machine.response_received
        return response

    def resume_from(self, last_event_id: str) -> None:
        """Resume after ``last_event_id``, as if the stream had been made with it: the first
        request sends it as Last-Event-ID (a ``Consumer`` with a checkpoint calls this with the
        stored ID). Only before the stream first connects; ValueError for an ID no event can
        have (with CR, LF or NUL)."""
        self._machine.resume_from(last_event_id)
        self._delivered_id = last_event_id

    def interrupt(self) -> None:
        """End the current connection (or backoff wait) and reconnect at once, resuming with
        Last-Event-ID. Safe from any thread or task. Raises StreamInterruptedError on a stream
        that does not reconnect."""
        self._machine.interrupt()
        self._waker.wake()

    def _new_waker(self) -> Waker:
        raise NotImplementedError

    def _new_client_options(self) -> dict[str, Any]:
        return {"timeout": DEFAULT_CONNECT_TIMEOUT, "follow_redirects": True}

    def _build_request(self, client: _Client, action: Send) -> httpx.Request:
        base = self._timeout if self._timeout is not None else client.timeout
        url = action.url
        if isinstance(client, _HTTPX_CLIENTS) and isinstance(url, (str, httpx.URL)):
            url = _parsed_url(url)  # Not parsed again (httpx2's client takes its own URL).
        request = client.build_request(
            action.method,
            url,
            headers=action.headers,
            timeout=request_timeout(base, connect=self._connect_timeout, read=self._read_timeout),
            **self._request_options,
        )
        cookies = self._cookies
        if self._jar is not None:  # what the server set, under what the caller gave
            merged = type(self._jar)(self._jar)
            if cookies is not None:
                merged.update(type(self._jar)(cookies))
            cookies = merged
        if cookies is not None:
            add_cookies(client, request, cookies)
        return request

    def _keep_cookies(self, response: Any) -> None:
        """A stream on a shared client (which stores no cookie, so that none crosses to another
        stream) keeps the cookies its own responses set, and sends them again when it
        reconnects, as a client of its own would (a load balancer's sticky session, say)."""
        if self._owns_client and "set-cookie" in response.headers:
            if self._jar is None:  # httpx's or httpx2's, as the client is
                self._jar = type(cast(Any, self._client).cookies)()
            self._jar.extract_cookies(shown_of(response) or response)

    def _loop_to_run(self, start: Callable[[], _Loop]) -> _Loop | None:
        """The connection loop to iterate: the one in progress (a ``break`` leaves it open),
        else a new one from ``start``, else None when the stream is over. (A loop forgets
        itself when it ends, whichever way.)"""
        if self._loop is None:
            if self._machine.done or self._machine.closed:
                if self._machine.error is not None:  # A failed stream stays failed.
                    raise self._machine.error
                return None
            self._loop = start()
        loop: _Loop = self._loop
        return loop

    def _iteration_ended(self, loop: object, *, finished: bool) -> bool:
        """An iteration of ``loop`` ends: whether it must close the loop (``close()`` from
        another thread or task left that to the iteration that held it).

        A loop that ``finished`` without the stream being over was ended by an exception
        thrown into its read (a cancelled task, Ctrl-C), which also closed its connection: it
        is forgotten, so that the next iteration starts a new one and reconnects."""
        if self._loop is not loop:
            return False
        if finished or self._machine.closed:
            self._loop = None
        return self._machine.closed and not finished

    def _busy(self) -> RuntimeError:
        machine = self._machine
        return RuntimeError(
            f"the stream from {machine.method} {machine.shown_url} is already being iterated by "
            f"another {self._reader_noun}: a stream has one reader at a time (fastsse.Consumer "
            "hands its events to several workers)"
        )

    def _filled_backlog(self) -> deque[Event]:
        """The backlog to fill: made once, then the same deque for the stream's lifetime (an
        iteration may hold it)."""
        backlog = self._backlog
        if isinstance(backlog, tuple):
            backlog = self._backlog = deque()
        return backlog

    def _next_from_backlog(self) -> Event:
        event = self._filled_backlog().popleft()
        self._delivered_id = event.id
        return event

    def _take_backlog(self) -> list[Event]:
        batch = list(self._backlog)
        if batch:
            self._filled_backlog().clear()
        return batch


def finished(generator: object) -> bool:
    """Whether a generator or an async generator has run to its end (returned or raised)."""
    frame = getattr(generator, "gi_frame", None) or getattr(generator, "ag_frame", None)
    return frame is None


def _validate(
    url: object,
    method: object,
    last_event_id: object,
    read_timeout: object,
    on_oversize: object,
    *hooks: object,
) -> None:
    """TypeError or ValueError for a constructor argument that every stream has and that
    cannot work (the others: ``_validate_options``)."""
    if not isinstance(url, (str, httpx.URL)):
        raise TypeError(f"url must be a str or an httpx.URL, got {url!r}")
    if not str(url).strip():
        raise ValueError("url must not be empty")
    try:
        _parsed_url(url)
    except httpx.InvalidURL as error:
        shown = redact(str(error), url)  # A URL's secrets never in a message.
        raise ValueError(f"url {redact_url(url)!r} is not a valid URL: {shown}") from None
    if not isinstance(method, str):
        raise TypeError(f"method must be a str such as 'GET' or 'POST', got {method!r}")
    if not method or not _TOKEN.fullmatch(method):
        raise ValueError(f"method must be an HTTP method such as 'GET' or 'POST', got {method!r}")
    if not isinstance(last_event_id, str):
        raise TypeError(f"last_event_id must be a str, got {last_event_id!r}")
    if read_timeout is not None:
        _check_seconds("read_timeout", read_timeout, zero=False)
    if on_oversize not in ("error", "skip"):
        raise ValueError(f"on_oversize must be 'error' or 'skip', got {on_oversize!r}")
    for name, hook in zip(("on_connect", "on_fault", "on_comment"), hooks):
        if hook is not None and not callable(hook):
            raise TypeError(f"{name} must be callable or None, got {hook!r}")


def _validate_options(client_classes: tuple[type, ...], **options: Any) -> None:
    """TypeError or ValueError for one of the constructor's other arguments that cannot work
    (called when one of them is given: None is valid for each)."""
    client = options["client"]
    if client is not None and not accepts(client, client_classes):
        names = " or ".join(f"{c.__module__}.{c.__qualname__}" for c in client_classes)
        names += " (or httpx2's)"
        raise TypeError(f"client must be an {names} (or None), got {client!r}")
    if options["json"] is not None:
        try:
            httpx.Request("POST", "http://localhost/", json=options["json"])
        except (TypeError, ValueError) as error:
            raise type(error)(f"json cannot be sent as JSON: {error}") from None
    content = options["content"]
    if content is not None and not isinstance(content, (str, bytes)):
        raise TypeError(
            "content must be str or bytes (a stream may send its request again, so an "
            f"iterator cannot be its body), got {type(content).__name__}"
        )
    for name in ("data", "extensions"):
        value = options[name]
        if value is not None and not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a mapping or None, got {value!r}")
    files = options["files"]
    if files is not None:
        if not isinstance(files, (Mapping, Sequence)):
            raise TypeError(f"files must be a mapping or a sequence of pairs, got {files!r}")
        for name, file in _items(files):
            if not isinstance(file, (bytes, str, tuple)) and not hasattr(file, "read"):
                raise TypeError(
                    f"files[{name!r}] must be bytes, str, a file opened in binary mode or a "
                    f"(filename, content[, content_type]) tuple, got {file!r}"
                )
    auth = options["auth"]
    if isinstance(auth, tuple) and len(auth) != 2:
        raise ValueError(f"auth must be a (user, password) pair, got a tuple of {len(auth)}")
    if not (auth is None or isinstance(auth, (tuple, *classes("Auth"))) or callable(auth)):
        raise TypeError(
            f"auth must be a (user, password) tuple, an httpx.Auth or None, got {auth!r}"
        )
    timeout = options["timeout"]
    if timeout is not None and not isinstance(timeout, classes("Timeout")):
        _check_seconds("timeout", timeout, zero=True)
    for name in ("follow_redirects", "reconnect"):
        value = options[name]
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"{name} must be True, False or None, got {value!r}")
    retry = options["retry"]
    if retry is not None and not isinstance(retry, Retry):
        raise TypeError(f"retry must be a fastsse.Retry or None, got {retry!r}")
    if options["connect_timeout"] is not None:
        _check_seconds("connect_timeout", options["connect_timeout"], zero=False)


@functools.lru_cache(maxsize=1024)
def _parsed_url(url: str | httpx.URL) -> httpx.URL:
    """``url`` parsed, once for all the streams to the same URL (thousands of streams often
    share a few: parsing costs about as much as the rest of a stream's construction). httpx's
    URLs are immutable, so one may serve every stream and every request."""
    return httpx.URL(url)


def _items(pairs: Any) -> list[tuple[Any, Any]]:
    """A mapping's or a sequence of pairs' (name, value) items; [] for anything else."""
    if isinstance(pairs, Mapping):
        return list(pairs.items())
    if isinstance(pairs, Sequence) and not isinstance(pairs, (str, bytes)):
        return [pair for pair in pairs if isinstance(pair, tuple) and len(pair) == 2]
    return []


def _check_seconds(name: str, value: object, *, zero: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(
            f"{name} must be a finite number of seconds {bound} (or None), got {value!r}"
        )


#: An HTTP method is a token (RFC 9110).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def failed(machine: StreamMachine, error: Exception) -> None:
    """Tells ``machine`` how the attempt or the connection ended: a failure of the client
    library, or a wait cut short by close() or interrupt(). Re-raises anything else: the
    stream's own errors, and those of the caller's hooks, end the stream."""
    kind: FaultKind | None = "interrupted" if isinstance(error, Woken) else classify(error)
    if kind is None:
        raise error
    machine.failed(kind, error)
