"""Shared helpers of the stream tests: bounded consumers, fast and recording retry policies."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import fastsse
from fastsse import AsyncEventStream, Backoff, Event, EventStream, Retry, StreamStats
from fastsse._io.clients import classes

KINDS = ("sync", "async")
#: Upper bound of any single test's wait; tests normally finish in milliseconds.
TIMEOUT = 5.0

T = TypeVar("T")


def transport_error(name: str) -> tuple[type, ...]:
    """The exception class ``name`` of httpx and of httpx2 (when loaded): a stream raises those
    of its client's library."""
    return classes(name)


def fast_retry(**overrides: Any) -> Retry:
    """Millisecond reconnects, so that reconnect loops take no noticeable time."""
    options: dict[str, Any] = {
        "initial": 0.005,
        "multiplier": 1.5,
        "max_delay": 0.02,
        "jitter": False,
        "min_server_retry": 0.001,
        "max_server_retry": 0.05,
    }
    options.update(overrides)
    return Retry(**options)


@dataclass
class Decision:
    """One reconnect decision of a :class:`RecordingRetry` backoff."""

    retry_after: float | None
    base: float
    delay: float | None  # None: the policy gave up (RetriesExhausted)
    cause: BaseException | None


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class RecordingRetry(Retry):
    """A Retry whose backoffs record every decision, with a scripted (fixed) jitter draw and,
    when given, an injected clock (else the real one)."""

    rng_value: float = 0.5
    log: list[Decision] = field(default_factory=list, compare=False, hash=False, repr=False)
    clock: Callable[[], float] | None = field(default=None, compare=False, hash=False)

    def start(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] | None = None,
    ) -> Backoff:
        return _RecordingBackoff(self, clock=self.clock or clock, rng=lambda: self.rng_value)

    @property
    def delays(self) -> list[float | None]:
        return [decision.delay for decision in self.log]


class _RecordingBackoff(Backoff):
    def next_delay(
        self, cause: BaseException | None = None, *, retry_after: float | None = None
    ) -> float:
        policy = self.policy
        assert isinstance(policy, RecordingRetry)
        base = self.delay_base
        try:
            delay = super().next_delay(cause, retry_after=retry_after)
        except fastsse.RetriesExhausted:
            policy.log.append(Decision(retry_after, base, None, cause))
            raise
        policy.log.append(Decision(retry_after, base, delay, cause))
        return delay


def run_bounded(fn: Callable[[], T], timeout: float = TIMEOUT) -> T:
    """Run ``fn`` in a daemon thread; fail (instead of hanging) if it takes over ``timeout``."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"still running after {timeout} s")
    if "error" in result:
        raise result["error"]
    return result["value"]  # type: ignore[no-any-return]


@dataclass
class Outcome:
    """What a consumer saw: the events, how it ended, and the stream's final state."""

    events: list[Event]
    error: BaseException | None
    stats: StreamStats
    last_event_id: str
    elapsed: float
    batches: list[list[Event]] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [event.id for event in self.events]

    @property
    def data(self) -> list[str]:
        return [event.data for event in self.events]


def collect(
    kind: str,
    url: str,
    *,
    limit: int | None = None,
    timeout: float = TIMEOUT,
    batches: bool = False,
    **options: Any,
) -> Outcome:
    """Consume a stream of ``kind`` ("sync" or "async") until it ends, fails or delivers
    ``limit`` events; bounded by ``timeout``. Errors are captured in the outcome."""
    options.setdefault("retry", fast_retry())
    options.setdefault("read_timeout", timeout)
    if kind == "sync":
        return _collect_sync(url, limit, timeout, batches, options)
    assert kind == "async", kind
    return run_bounded(
        lambda: anyio.run(_collect_async, url, limit, timeout, batches, options),
        timeout + 2.0,
    )


def _collect_sync(
    url: str, limit: int | None, timeout: float, batches: bool, options: dict[str, Any]
) -> Outcome:
    stream = EventStream(url, **options)

    def consume() -> Outcome:
        events: list[Event] = []
        seen: list[list[Event]] = []
        error: BaseException | None = None
        started = time.monotonic()
        try:
            with stream:
                if batches:
                    for batch in stream.batches():
                        seen.append(batch)
                        events.extend(batch)
                        if limit is not None and len(events) >= limit:
                            break
                else:
                    for event in stream:
                        events.append(event)
                        if limit is not None and len(events) >= limit:
                            break
        except Exception as exc:
            error = exc
        elapsed = time.monotonic() - started
        return Outcome(events, error, stream.stats, stream.last_event_id, elapsed, seen)

    try:
        return run_bounded(consume, timeout)
    except AssertionError:
        stream.close()
        raise


async def _collect_async(
    url: str, limit: int | None, timeout: float, batches: bool, options: dict[str, Any]
) -> Outcome:
    events: list[Event] = []
    seen: list[list[Event]] = []
    error: BaseException | None = None
    started = time.monotonic()
    stream = AsyncEventStream(url, **options)
    with anyio.fail_after(timeout):
        try:
            async with stream:
                if batches:
                    async for batch in stream.batches():
                        seen.append(batch)
                        events.extend(batch)
                        if limit is not None and len(events) >= limit:
                            break
                else:
                    async for event in stream:
                        events.append(event)
                        if limit is not None and len(events) >= limit:
                            break
        except Exception as exc:
            error = exc
    elapsed = time.monotonic() - started
    return Outcome(events, error, stream.stats, stream.last_event_id, elapsed, seen)


def closed_port() -> int:
    """A loopback port with nothing listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def iterate_in_thread(stream: EventStream) -> tuple[threading.Thread, list[Event], list[object]]:
    """Iterates ``stream`` in a daemon thread: the thread, the events it got so far, and how it
    ended (``"ended"``, or the exception), once it did."""
    got: list[Event] = []
    outcome: list[object] = []

    def consume() -> None:
        try:
            for item in stream:
                got.append(item)
            outcome.append("ended")
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    return thread, got, outcome


@contextmanager
def closed_and_joined(stream: EventStream, thread: threading.Thread) -> Iterator[None]:
    """Whatever the block raises, close ``stream`` and wait for ``thread``, which iterates it, to
    end (bounded), so that no test leaves a thread reading."""
    try:
        yield
    finally:
        stream.close()
        thread.join(TIMEOUT)


def assert_ends_soon(thread: threading.Thread, within: float = 1.0, why: str = "") -> None:
    """``thread`` ends within ``within`` seconds."""
    thread.join(within)
    assert not thread.is_alive(), why


@contextmanager
def _listener(
    serve: Callable[[socket.socket, threading.Event], None] | None = None,
) -> Iterator[tuple[str, list[socket.socket]]]:
    """A loopback server: its URL and the connections it accepted, each served by ``serve(conn,
    stop)`` in a thread of its own (by nobody without it)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn)
            if serve is not None:
                threading.Thread(target=serve, args=(conn, stop), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/", accepted
    finally:
        stop.set()
        thread.join(2.0)
        listener.close()
        for conn in accepted:
            conn.close()


def silent_listener() -> contextlib.AbstractContextManager[tuple[str, list[socket.socket]]]:
    """A loopback server that accepts connections and never answers (no status line)."""
    return _listener()


@dataclass
class KeepAliveServer:
    """What :func:`keep_alive_server` saw: the connections it accepted, and an event set when
    the second request arrived (on whichever connection)."""

    url: str
    accepted: list[socket.socket]
    second_request: threading.Event


def _keep_alive_serve(
    answer: Callable[[int], bytes | None],
) -> Callable[[socket.socket, threading.Event], None]:
    """A connection handler for :func:`_listener` that serves HTTP/1.1 on a connection it keeps
    alive: each request (numbered from 1 across all connections) gets ``answer(number)`` sent
    back, or no answer at all where that is None."""
    requests = 0
    lock = threading.Lock()

    def serve(conn: socket.socket, stop: threading.Event) -> None:
        nonlocal requests
        buffer = b""
        conn.settimeout(0.05)
        while not stop.is_set():
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            buffer += data
            while b"\r\n\r\n" in buffer:
                _, _, buffer = buffer.partition(b"\r\n\r\n")
                with lock:
                    requests += 1
                    number = requests
                reply = answer(number)
                if reply is not None:
                    conn.sendall(reply)

    return serve


@contextmanager
def keep_alive_server(first: bytes) -> Iterator[KeepAliveServer]:
    """A loopback HTTP/1.1 server that keeps connections alive (SSEServer closes each after its
    response): it answers the first request with the event stream ``first`` (with a
    Content-Length, so the client can reuse the connection), and never answers the second."""
    second_request = threading.Event()

    def answer(number: int) -> bytes | None:
        if number == 1:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            return head + b"Content-Length: %d\r\n\r\n%s" % (len(first), first)
        second_request.set()  # and no answer
        return None

    with _listener(_keep_alive_serve(answer)) as (url, accepted):
        yield KeepAliveServer(url, accepted, second_request)


@contextmanager
def redirect_loop_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """A loopback HTTP/1.1 server that answers every request, on connections it keeps alive,
    with a 307 to itself: its URL and the connections it accepted."""

    def answer(number: int) -> bytes:
        return b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /\r\nContent-Length: 0\r\n\r\n"

    with _listener(_keep_alive_serve(answer)) as found:
        yield found
