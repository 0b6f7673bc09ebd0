"""A scriptable Server-Sent Events server on loopback, for testing SSE consumers.

:class:`SSEServer` listens on ``127.0.0.1`` on an ephemeral port and runs its asyncio loop in a
background thread, so the same server works from synchronous tests and from async tests on any
event loop. Each incoming request consumes the next scripted :class:`Response` (the last one
repeats); a response's body is a lazy iterable of actions: ``bytes`` (one flushed write, which
is one HTTP chunk), :func:`event`, :func:`comment`, :func:`split`, :func:`delay`, :func:`stall`,
:func:`close` and :func:`abort`. Every request is recorded::

    from fastsse.testing import Response, SSEServer, abort, delay, event

    with SSEServer() as server:
        server.route(
            "/feed",
            Response(body=[event("hello", id="1"), delay(0.1), abort()]),
            lambda req: Response(body=[event(f"resumed after {req.last_event_id}")]),
        )
        ...  # point the client under test at server.url_for("/feed")
        first, second = server.wait_for_requests(2)
        assert second.last_event_id == "1"

Every response carries ``Connection: close``, so each request has its own connection, which keeps
reconnect tests deterministic. Nothing here depends on the rest of fastsse.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import re
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Union

import h11

__all__ = [
    "Abort",
    "Action",
    "Close",
    "Delay",
    "Handler",
    "RecordedRequest",
    "Response",
    "SSEServer",
    "Stall",
    "abort",
    "close",
    "comment",
    "delay",
    "event",
    "split",
    "stall",
]

_log = logging.getLogger(__name__)
_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_NEWLINE = re.compile(r"\r\n|\r|\n")


# -- argument checks --------------------------------------------------------------------------


def _check_number(name: str, value: float, *, minimum: float = 0.0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not value >= minimum:  # also refuses NaN
        raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}")


def _check_int(name: str, value: int, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"{name} must be {bounds}, got {value!r}")


def _check_line(name: str, value: str | None) -> None:
    """A value written on one line of the stream or the head: a line break would end it."""
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} must be one line, got {value!r}")


def _check_handler(name: str, value: object) -> None:
    if not isinstance(value, Response) and not callable(value):
        raise TypeError(
            f"{name} must be a Response or a function of the RecordedRequest returning one, "
            f"got {value!r}"
        )


# -- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delay:
    """Send nothing for ``seconds`` (cut short if the client disconnects)."""

    seconds: float

    def __post_init__(self) -> None:
        _check_number("seconds", self.seconds)


@dataclass(frozen=True)
class Stall:
    """Keep the connection open and silent until the client leaves or the server stops."""


@dataclass(frozen=True)
class Close:
    """End the response cleanly now; later actions are not played."""


@dataclass(frozen=True)
class Abort:
    """Reset the TCP connection (RST): the client sees ECONNRESET, even mid-event."""


Action = Union[bytes, bytearray, memoryview, Delay, Stall, Close, Abort]


def event(
    data: str = "",
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """Serialise one event; every line of ``data`` (CR, LF or CRLF ends) gets its own ``data:``.

    ``event`` and ``id`` must be one line each and ``retry`` an int >= 0; write the bytes
    yourself to send a malformed event.
    """
    if not isinstance(data, str):
        raise TypeError(f"data must be a str, got {data!r}")
    _check_line("event", event)
    _check_line("id", id)
    if retry is not None:
        _check_int("retry", retry, 0)
    lines = [] if event is None else [f"event: {event}"]
    if id is not None:
        lines.append(f"id: {id}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    lines.extend(f"data: {line}" for line in _NEWLINE.split(data))
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str = "ping") -> bytes:
    """A comment line, the usual heartbeat: ``: ping`` (one per line of ``text``)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {text!r}")
    return "".join(f": {line}\n" for line in _NEWLINE.split(text)).encode()


def split(data: bytes, at: Iterable[int], *, pause: float = 0.0) -> list[Action]:
    """``data`` cut at the offsets ``at`` into separate writes, ``pause`` seconds apart.

    Splice it into a body with ``*``: ``body=[*split(event("é"), at=[7])]`` splits inside the é.
    Each offset is an int from 0 to ``len(data)``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {data!r}")
    offsets = list(at)
    for offset in offsets:
        _check_int("each offset in at", offset, 0, len(data))
    _check_number("pause", pause)
    cuts = [0, *sorted(set(offsets)), len(data)]
    parts: list[Action] = []
    for start, end in zip(cuts, cuts[1:]):
        if parts and pause:
            parts.append(Delay(pause))
        parts.append(data[start:end])
    return parts


def delay(seconds: float) -> Delay:
    """Send nothing for ``seconds`` (>= 0), or until the client disconnects."""
    return Delay(seconds)


def stall() -> Stall:
    """Keep the connection open and silent until the client leaves or the server stops."""
    return Stall()


def close() -> Close:
    """End the response cleanly here; the actions after it are not played."""
    return Close()


def abort() -> Abort:
    """Reset the connection (TCP RST) here, even in the middle of an event."""
    return Abort()


# -- responses and requests -------------------------------------------------------------------


#: ``Response.status`` of a server that closes the connection without answering.
_HANG_UP = 0


@dataclass(frozen=True)
class Response:
    """One scripted response.

    Args:
        status: the HTTP status, a three-digit int (default 200); 0 answers nothing and
            closes the connection (see :meth:`hang_up`).
        body: ``bytes``, sent with ``Content-Length``, or an iterable of actions (``bytes``,
            :func:`event`, :func:`delay`, :func:`abort`...), played lazily: with
            ``Transfer-Encoding: chunked`` (each write is one chunk) or, when ``chunked`` is
            false, with no framing and the end marked by closing the connection. If ``headers``
            set ``Content-Length`` or ``Transfer-Encoding`` themselves, the body is written
            verbatim. Generators can only be played once: wrap them in a handler,
            ``lambda req: Response(...)``.
        headers: more response headers, names and values as ``str`` (one line each).
        content_type: the ``Content-Type`` header, or None for none (default
            ``text/event-stream``); a ``Content-Type`` in ``headers`` wins.
        chunked: frame an iterable body with chunked transfer coding (default True).

    Each write costs a system call; to stream fast, write larger bytes or use stream_bytes.
    """

    status: int = 200
    body: bytes | Iterable[Action] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = "text/event-stream"
    chunked: bool = True

    def __post_init__(self) -> None:
        if self.status != _HANG_UP:
            _check_int("status", self.status, 100, 999)
        if isinstance(self.body, str):
            raise TypeError("body must be bytes or an iterable of actions, not str: encode it")
        if not isinstance(self.body, (bytes, bytearray, memoryview, Iterable)):
            raise TypeError(f"body must be bytes or an iterable of actions, got {self.body!r}")
        if not isinstance(self.headers, Mapping):
            raise TypeError(f"headers must be a mapping of str to str, got {self.headers!r}")
        for name, value in self.headers.items():
            _check_line("a header name", name)
            _check_line(f"header {name}", value)
            if value is None:
                raise TypeError(f"header {name} must be a str, got None")
        _check_line("content_type", self.content_type)
        if not isinstance(self.chunked, bool):
            raise TypeError(f"chunked must be a bool, got {self.chunked!r}")

    @classmethod
    def json(
        cls, obj: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        body = json.dumps(obj).encode()
        return cls(status, body, headers or {}, content_type="application/json")

    @classmethod
    def hang_up(cls) -> Response:
        """No response at all: the server reads the request and resets the connection, as a
        server that crashed while handling it (``status`` 0 means this)."""
        return cls(_HANG_UP, b"", content_type=None)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Response:
        return cls(status, b"", {"Location": location}, content_type=None)

    @classmethod
    def stream_bytes(
        cls, corpus: bytes, chunk_size: int = 16384, headers: Mapping[str, str] | None = None
    ) -> Response:
        """Stream a pre-built corpus in HTTP chunks of ``chunk_size`` bytes, at full speed."""
        _check_int("chunk_size", chunk_size, 1)
        view = memoryview(corpus)
        return cls.stream_chunks(
            (view[i : i + chunk_size] for i in range(0, len(view), chunk_size)), headers
        )

    @classmethod
    def stream_chunks(
        cls,
        chunks: Iterable[bytes | memoryview],
        headers: Mapping[str, str] | None = None,
        *,
        write_size: int = 256 * 1024,
    ) -> Response:
        """Stream each of ``chunks`` as one HTTP chunk, at full speed, for benchmarks.

        The chunk framing is done up front and sent ``write_size`` bytes per system call, so
        the server costs next to nothing and a benchmark measures the client, not the server.
        """
        _check_int("write_size", write_size, 1)
        framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks if chunk)
        view = memoryview(framed + b"0\r\n\r\n")
        writes = [view[i : i + write_size] for i in range(0, len(view), write_size)]
        return cls(200, writes, {**(headers or {}), "Transfer-Encoding": "chunked"})


Handler = Union[Response, Callable[["RecordedRequest"], Response]]
_NOT_FOUND = Response(404, b"no response scripted", content_type="text/plain")


@dataclass(frozen=True)
class RecordedRequest:
    """A request as received. Header names are lower-cased; values are the raw bytes sent."""

    method: str
    target: str
    headers: tuple[tuple[str, bytes], ...]
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header_bytes(self, name: str) -> bytes | None:
        """The first value of header ``name`` (any case), as sent."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name``, decoded as UTF-8 (invalid bytes replaced)."""
        value = self.header_bytes(name)
        return default if value is None else value.decode("utf-8", "replace")

    @property
    def last_event_id(self) -> str | None:
        return self.header("last-event-id")

    def json(self) -> Any:
        return json.loads(self.body)


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class _Script:
    """Responses queued for one path: consumed in order, the last one repeating."""

    def __init__(self) -> None:
        self.pending: deque[Handler] = deque()
        self.last: Handler | None = None

    def next(self) -> Handler | None:
        if self.pending:
            self.last = self.pending.popleft()
        return self.last


# -- the server -------------------------------------------------------------------------------


class SSEServer:
    """A scriptable HTTP/1.1 server on loopback; see the module docstring.

    Args:
        *responses: each a :class:`Response` or a handler (a function of the
            :class:`RecordedRequest` returning one), queued for any path without a route of
            its own, as :meth:`respond` queues them.
        host: the address to listen on (default ``127.0.0.1``).
        port: the port to listen on; 0 (default) picks a free one, read back from :attr:`port`.
        fallback: the answer to a request for which nothing is scripted (default: a 404).

    Run it with ``with SSEServer() as server:``, ``async with``, or :meth:`start` and
    :meth:`stop`.
    """

    def __init__(
        self,
        *responses: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        fallback: Handler = _NOT_FOUND,
    ) -> None:
        if not isinstance(host, str):
            raise TypeError(f"host must be a str, got {host!r}")
        if not host:
            raise ValueError("host must not be empty")
        _check_int("port", port, 0, 65535)
        _check_handler("fallback", fallback)
        self.host = host
        self._requested_port = port
        self._fallback = fallback
        self._default = _Script()
        self._routes: dict[str, _Script] = {}
        self._cond = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._open = 0
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.respond(*responses)

    # scripting

    def respond(self, *responses: Handler) -> None:
        """Queue responses for any path that has no route of its own."""
        for response in responses:
            _check_handler("each response", response)
        with self._cond:
            self._default.pending.extend(responses)

    def route(self, path: str, *responses: Handler) -> None:
        """Queue responses for requests to ``path``, such as ``"/feed"`` (the query string of a
        request is ignored)."""
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, got {path!r}")
        if not path.startswith("/") or "?" in path:
            raise ValueError(f"path must start with '/' and have no query string, got {path!r}")
        for response in responses:
            _check_handler("each response", response)
        with self._cond:
            self._routes.setdefault(path, _Script()).pending.extend(responses)

    def _next_response(self, request: RecordedRequest) -> Response:
        with self._cond:
            script = self._routes.get(request.path)
            handler = script.next() if script is not None else None
            if handler is None:
                handler = self._default.next()
        if handler is None:
            handler = self._fallback
        return handler if isinstance(handler, Response) else handler(request)

    # observation

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("SSEServer is not running")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def url_for(self, path: str) -> str:
        """The URL of ``path`` on this server, such as ``server.url_for("/feed?since=3")``."""
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, got {path!r}")
        return self.url + path.lstrip("/")

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._cond:
            return list(self._requests)

    @property
    def connections(self) -> int:
        """Connections open right now."""
        with self._cond:
            return self._open

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until ``n`` requests have arrived and return them, or raise TimeoutError."""
        _check_int("n", n, 0)
        _check_number("timeout", timeout)
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._requests) >= n, timeout):
                raise TimeoutError(f"{len(self._requests)} requests arrived, waited for {n}")
            return self._requests[:n]

    def wait_for_idle(self, timeout: float = 5.0) -> None:
        """Block until no connection is open; TimeoutError after ``timeout``."""
        _check_number("timeout", timeout)
        with self._cond:
            if not self._cond.wait_for(lambda: self._open == 0, timeout):
                raise TimeoutError(f"{self._open} connections still open")

    async def wait_for_requests_async(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        return await asyncio.to_thread(self.wait_for_requests, n, timeout)

    async def wait_for_idle_async(self, timeout: float = 5.0) -> None:
        await asyncio.to_thread(self.wait_for_idle, timeout)

    # lifecycle

    def start(self, timeout: float = 5.0) -> SSEServer:
        """Start listening (within ``timeout`` seconds) and serving in a background thread."""
        _check_number("timeout", timeout)
        if self._thread is not None:
            raise RuntimeError("SSEServer already started")
        started: Future[int] = Future()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.name = "fastsse-SSEServer"
        self._thread.start()
        self._port = started.result(timeout)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every open connection, then join the server thread."""
        _check_number("timeout", timeout)
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        self._port = None
        if thread.is_alive():
            raise TimeoutError(f"SSEServer thread did not stop within {timeout} s")

    def __enter__(self) -> SSEServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> SSEServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)

    # the loop thread

    def _run(self, started: Future[int]) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve(started))
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
        finally:
            loop.close()

    async def _serve(self, started: Future[int]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(
            self._connection, self.host, self._requested_port, limit=_MAX_HEAD
        )
        started.set_result(server.sockets[0].getsockname()[1])
        try:
            await self._stopping.wait()
        finally:
            server.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=2.0)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        with self._cond:
            self._open += 1
        conn = _Connection(reader, writer)
        graceful = False
        try:
            graceful = await self._exchange(conn)
        except (asyncio.CancelledError, ConnectionError, OSError, asyncio.IncompleteReadError):
            pass  # the server is stopping or the client left: neither deserves a traceback
        except Exception:
            _log.exception("SSEServer: error while serving a request")
        finally:
            # A connection task must not end cancelled: Python 3.11's streams log that as an error.
            with contextlib.suppress(asyncio.CancelledError):
                await conn.close(graceful)
            self._tasks.discard(task)
            with self._cond:
                self._open -= 1
                self._cond.notify_all()

    async def _exchange(self, conn: _Connection) -> bool:
        """Serve one request; True when the response ended cleanly."""
        try:
            request = await _read_request(conn.reader, conn.writer)
        except _BadRequest as exc:
            conn.watch()
            return await conn.respond(
                "GET", Response(exc.status, str(exc).encode(), content_type="text/plain")
            )
        if request is None:
            return False
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()
        response = self._next_response(request)
        conn.watch()
        return await conn.respond(request.method, response)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.chunked = False
        self.gone = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        # With no buffering in asyncio, each write reaches the kernel before the next action:
        # chunk boundaries stay where the script put them and an abort loses nothing written.
        writer.transport.set_write_buffer_limits(0)

    def watch(self) -> None:
        """Drain the socket in the background to learn promptly when the client leaves.

        Reading also matters for the close: a socket closed with unread input sends RST, not FIN.
        """
        self._watcher = asyncio.create_task(self._drain_input())

    async def _drain_input(self) -> None:
        try:
            while await self.reader.read(65536):
                pass
        except (ConnectionError, OSError):
            pass
        finally:
            self.gone.set()

    async def respond(self, method: str, response: Response) -> bool:
        status, body = response.status, response.body
        if status == _HANG_UP:
            return False
        bodiless = method == "HEAD" or status < 200 or status in (204, 304)
        fixed = body if isinstance(body, (bytes, bytearray, memoryview)) else None
        names = {name.lower() for name in response.headers}
        headers = list(response.headers.items())
        if response.content_type and "content-type" not in names:
            headers.insert(0, ("Content-Type", response.content_type))
        if not names & {"content-length", "transfer-encoding"} and status not in (204, 304):
            if fixed is not None:
                headers.append(("Content-Length", str(len(fixed))))
            elif response.chunked and not bodiless:
                headers.append(("Transfer-Encoding", "chunked"))
                self.chunked = True
        headers.append(("Connection", "close"))
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers), "", ""]
        self.writer.write("\r\n".join(lines).encode())
        if bodiless:
            await self.writer.drain()
            return True
        if isinstance(body, (bytes, bytearray, memoryview)):
            self.writer.write(body)
            await self.writer.drain()
            return True
        return await self._play(body)

    async def _play(self, actions: Iterable[Action]) -> bool:
        for action in actions:
            if isinstance(action, (bytes, bytearray, memoryview)):
                await self.write(action)
            elif isinstance(action, Delay):
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.gone.wait(), action.seconds)
            elif isinstance(action, Stall):
                await self.gone.wait()
                return False
            elif isinstance(action, Abort):
                sock = self.writer.get_extra_info("socket")
                if sock is not None:  # linger 0 makes close() send RST instead of FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return False
            elif isinstance(action, Close):
                break
            else:
                raise TypeError(f"not an SSEServer action: {action!r}")
        if self.chunked:
            self.chunked = False
            await self.write(b"0\r\n\r\n")
        return True

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return  # an empty HTTP chunk would end the body
        if self.gone.is_set() or self.writer.transport.is_closing():
            # Writing to a dead transport makes asyncio log warnings; stop quietly instead.
            raise ConnectionResetError("client disconnected")
        if self.chunked:
            data = b"".join((b"%x\r\n" % len(data), data, b"\r\n"))
        self.writer.write(data)
        await self.writer.drain()

    async def close(self, graceful: bool) -> None:
        try:
            if graceful and self._watcher is not None:
                # Half-close, then keep reading until the client hangs up: closing a socket that
                # has unread input sends RST, which can destroy the response still in flight.
                self.writer.write_eof()
                await asyncio.wait_for(self.gone.wait(), 2.0)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass
        finally:  # also when the server stops during the wait
            if self._watcher is not None:
                self._watcher.cancel()
            self.writer.transport.abort()


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> RecordedRequest | None:
    """Read one request with h11, or None if the client left before sending a whole one.

    Raises _BadRequest with the status to answer: 400 for a malformed request, 413 for a body
    over _MAX_BODY, 431 for a head over _MAX_HEAD, 501 for a transfer-encoding h11 cannot read.
    """
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
    request: RecordedRequest | None = None
    body = bytearray()
    closed = False
    while True:
        try:
            event = parser.next_event()
        except h11.RemoteProtocolError as error:
            if closed:
                return None  # cut off mid-request: nobody is left to answer
            raise _BadRequest(error.error_status_hint, str(error)) from None
        if event is h11.NEED_DATA:
            # Small reads until the head is parsed, so h11 sees an oversized head while it is
            # still incomplete, which is when it enforces max_incomplete_event_size.
            data = await reader.read(4096 if request is None else 65536)
            closed = not data
            parser.receive_data(data)
        elif isinstance(event, h11.Request):
            request = RecordedRequest(
                event.method.decode("ascii"),
                event.target.decode("ascii"),  # h11 admits visible ASCII only
                tuple((name.decode("ascii"), value) for name, value in event.headers),
            )
            length = request.header_bytes("content-length")
            if length is not None and int(length) > _MAX_BODY:  # h11 checked it is digits
                raise _BadRequest(413, "request body too large")
            if parser.they_are_waiting_for_100_continue:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > _MAX_BODY:
                raise _BadRequest(413, "request body too large")
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            return RecordedRequest(request.method, request.target, request.headers, bytes(body))
        else:  # ConnectionClosed before a request began
            return None
