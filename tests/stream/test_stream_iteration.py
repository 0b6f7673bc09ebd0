"""Iterating a stream in pieces: a ``break``, then another iteration, must neither lose, repeat
nor corrupt an event, and must never re-send a request that does not reconnect.

A ``break`` leaves the connection open on both flavours (the next iteration goes on reading
it); ``interrupt()`` between pieces ends it, and the next iteration resumes with Last-Event-ID.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, Callable

import anyio
import pytest
from fastsse import (
    AsyncEventStream,
    ContentTypeError,
    Event,
    EventStream,
    Fault,
    InvalidRequestError,
    RetriesExhausted,
    Retry,
    StreamInterruptedError,
    UnexpectedStatusError,
)
from fastsse.testing import (
    Action,
    RecordedRequest,
    Response,
    SSEServer,
    comment,
    delay,
    event,
    stall,
)
from support.streams import KINDS, TIMEOUT, fast_retry, run_bounded

#: Iterations of one stream: ("events", "json" or "batches", how many items before breaking).
Steps = list[tuple[str, int]]


def run_in_pieces(
    kind: str, url: str, steps: Steps, *, interrupt: bool = False, **options: Any
) -> list[list[str]]:
    """Iterates the stream once per step, each time breaking after ``n`` items; ``how`` is
    "events", "json" or "batches". With ``interrupt``, ``interrupt()`` is called after each
    piece. Returns the data (decoded ``n`` values, or each batch's data joined with "+") each
    piece got."""
    options.setdefault("read_timeout", TIMEOUT)
    options.setdefault("retry", fast_retry())
    if kind == "sync":

        def run() -> list[list[str]]:
            pieces: list[list[str]] = []
            with EventStream(url, **options) as stream:
                for how, n in steps:
                    piece: list[str] = []
                    source = {"json": stream.json(), "batches": stream.batches()}.get(how, stream)
                    for item in source:
                        piece.append(_data(how, item))
                        if len(piece) == n:
                            break
                    pieces.append(piece)
                    if interrupt:
                        stream.interrupt()
            return pieces

        return run_bounded(run)

    async def arun() -> list[list[str]]:
        pieces: list[list[str]] = []
        with anyio.fail_after(TIMEOUT):
            async with AsyncEventStream(url, **options) as stream:
                for how, n in steps:
                    piece: list[str] = []
                    source = {"json": stream.json, "batches": stream.batches}.get(
                        how, stream.__aiter__
                    )()
                    async for item in source:
                        piece.append(_data(how, item))
                        if len(piece) == n:
                            break
                    # An async iterator left by a break is closed when collected, some time
                    # later; closing it says "now", as contextlib.aclosing does.
                    await source.aclose()  # type: ignore[attr-defined]
                    pieces.append(piece)
                    if interrupt:
                        stream.interrupt()
        return pieces

    return run_bounded(lambda: anyio.run(arun))


def _data(how: str, item: Any) -> str:
    if how == "json":
        return str(item["n"])
    if how == "batches":
        return "+".join(event.data for event in item)
    return str(item.data)


def resuming(*events: bytes, first: list[Any]) -> Callable[[RecordedRequest], Response]:
    """The first request gets ``first``; a resumed one, the events after its Last-Event-ID."""

    def respond(request: RecordedRequest) -> Response:
        if request.last_event_id is None:
            return Response(body=first)
        return Response(body=[*events[int(request.last_event_id) :], stall()])

    return respond


@pytest.mark.parametrize("kind", KINDS)
def test_a_partial_event_of_a_closed_connection_is_not_joined_to_the_next(
    server: SSEServer, kind: str
) -> None:
    events = [event("a", id="1"), event("b", id="2")]
    server.respond(resuming(*events, first=[events[0] + b"data: PARTIAL", stall()]))
    pieces = run_in_pieces(kind, server.url, [("events", 1), ("events", 1)], interrupt=True)
    assert pieces == [["a"], ["b"]]
    assert [request.last_event_id for request in server.requests] == [None, "1"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_break_mid_batch_keeps_the_rest_of_the_batch(server: SSEServer, kind: str) -> None:
    events = [event(name, id=str(i)) for i, name in enumerate("abcde", 1)]
    # a, b, c arrive in one chunk; the break after a leaves b and c to the next iteration.
    server.respond(resuming(*events, first=[b"".join(events[:3]), stall()]))
    pieces = run_in_pieces(kind, server.url, [("events", 1), ("events", 3)], interrupt=True)
    assert pieces == [["a"], ["b", "c", "d"]]
    # interrupt() after a ended the connection: b and c came from the backlog, then d from a
    # connection resumed after c.
    assert [request.last_event_id for request in server.requests] == [None, "3"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_break_mid_batch_keeps_the_connection_and_the_rest_of_the_batch(
    server: SSEServer, kind: str
) -> None:
    events = [event(name, id=str(i)) for i, name in enumerate("abcde", 1)]
    server.respond(Response(body=[b"".join(events[:3]), events[3], events[4], stall()]))
    pieces = run_in_pieces(kind, server.url, [("events", 1), ("events", 3), ("events", 1)])
    assert pieces == [["a"], ["b", "c", "d"], ["e"]]
    assert len(server.requests) == 1  # every piece read the same connection


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_three_hundred_breaks_use_one_request(server: SSEServer, kind: str, method: str) -> None:
    server.respond(Response(body=[*(event(str(i), id=str(i)) for i in range(300)), stall()]))
    pieces = run_in_pieces(kind, server.url, [("events", 1)] * 300, method=method)
    assert pieces == [[str(i)] for i in range(300)]
    assert [request.method for request in server.requests] == [method]


@pytest.mark.parametrize("kind", KINDS)
def test_events_and_batches_mixed_share_one_position(server: SSEServer, kind: str) -> None:
    events = [event(name, id=str(i)) for i, name in enumerate("abcdefg", 1)]
    chunks = [b"".join(events[:3]), b"".join(events[3:5]), events[5], events[6]]
    server.respond(Response(body=chunks), Response(204))
    steps = [("events", 1), ("batches", 1), ("events", 1), ("batches", 1), ("events", 10)]
    pieces = run_in_pieces(kind, server.url, steps)
    # However the client groups the chunks: the batch after a break starts with the events
    # the break left, and no event is lost or repeated.
    assert pieces[0] == ["a"]
    assert pieces[1][0].startswith("b+c")
    assert "+".join("+".join(piece) for piece in pieces if piece) == "+".join("abcdefg")
    assert len(server.requests) == 2  # one stream, then the 204 that ended it


def released_by(gate: threading.Event, first: bytes, *later: bytes) -> Iterator[Action]:
    """A body that sends ``first`` at once and each of ``later`` once the test sets ``gate``
    (which it clears): each part is a read of its own, whatever the client."""
    yield first
    for part in later:
        deadline = time.monotonic() + TIMEOUT
        while not gate.is_set() and time.monotonic() < deadline:
            yield delay(0.001)
        gate.clear()
        yield part
    yield stall()


@pytest.mark.anyio
async def test_async_an_open_batches_iteration_goes_on_with_what_a_break_left(
    server: SSEServer,
) -> None:
    a, b, c, d, e = (event(name, id=str(i)) for i, name in enumerate("abcde", 1))
    gate = threading.Event()
    server.respond(lambda request: Response(body=released_by(gate, a, b + c + d, e)))

    def data(batch: list[Event]) -> list[str]:
        return [event.data for event in batch]

    seen: list[Any] = []
    with anyio.fail_after(TIMEOUT):
        async with AsyncEventStream(server.url, retry=fast_retry()) as stream:
            batches = stream.batches()
            seen.append(data(await batches.__anext__()))
            gate.set()
            async for item in stream:  # b, c, d arrive together; the break leaves c, d
                seen.append(item.data)
                break
            seen.append(stream.last_event_id)
            # The suspended batch iteration hands them out before reading on.
            seen.append(data(await batches.__anext__()))
            seen.append(stream.last_event_id)
            gate.set()
            seen.append(data(await batches.__anext__()))
            await batches.aclose()
    assert seen == [["a"], "b", "2", ["c", "d"], "4", ["e"]]
    assert len(server.requests) == 1


def test_sync_an_open_batches_iteration_goes_on_with_what_a_break_left(
    server: SSEServer,
) -> None:
    a, b, c, d, e = (event(name, id=str(i)) for i, name in enumerate("abcde", 1))
    gate = threading.Event()
    server.respond(lambda request: Response(body=released_by(gate, a, b + c + d, e)))

    def data(batch: list[Event]) -> list[str]:
        return [event.data for event in batch]

    def run() -> list[Any]:
        seen: list[Any] = []
        with EventStream(server.url, retry=fast_retry()) as stream:
            batches = stream.batches()
            seen.append(data(next(batches)))
            gate.set()
            for item in stream:  # b, c, d arrive together; the break leaves c, d
                seen.append(item.data)
                break
            seen.append(stream.last_event_id)
            # The suspended batch iteration hands them out before reading on.
            seen.append(data(next(batches)))
            seen.append(stream.last_event_id)
            gate.set()
            seen.append(data(next(batches)))
            batches.close()
        return seen

    assert run_bounded(run) == [["a"], "b", "2", ["c", "d"], "4", ["e"]]
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_async_last_event_id_is_the_last_event_handed_out_mid_batch(
    server: SSEServer,
) -> None:
    server.respond(Response(body=[b"".join(event(n, id=n) for n in "1234"), stall()]))
    ids: list[str] = []
    with anyio.fail_after(TIMEOUT):
        async with AsyncEventStream(server.url, retry=fast_retry()) as stream:
            events = stream.__aiter__()
            async for item in events:
                ids.append(item.id)
                break
            ids.append(stream.last_event_id)
            await events.aclose()  # ends that iteration; the stream keeps 2, 3, 4
            ids.append(stream.last_event_id)
            ids.append((await stream.__anext__()).id)
            ids.append(stream.last_event_id)
            await stream.aclose()  # 3 and 4 are never handed out
            ids.append(stream.last_event_id)
            ids.extend([item.id async for item in stream])
    assert ids == ["1", "1", "1", "2", "2", "2"]


@pytest.mark.parametrize("kind", KINDS)
def test_json_keeps_the_rest_of_the_batch_across_a_break(server: SSEServer, kind: str) -> None:
    events = [event(f'{{"n": {i}}}', id=str(i)) for i in range(1, 5)]
    server.respond(resuming(*events, first=[b"".join(events[:3]), stall()]))
    pieces = run_in_pieces(kind, server.url, [("json", 1), ("json", 3)], interrupt=True)
    assert pieces == [["1"], ["2", "3", "4"]]
    assert [request.last_event_id for request in server.requests] == [None, "3"]


@pytest.mark.parametrize("kind", KINDS)
def test_an_oversized_event_of_a_closed_connection_does_not_swallow_the_next(
    server: SSEServer, kind: str
) -> None:
    events = [event("a", id="1"), event("b", id="2"), event("c", id="3")]
    first = [events[0] + b"data: " + b"x" * 200, stall()]
    server.respond(resuming(*events, first=first))
    pieces = run_in_pieces(
        kind,
        server.url,
        [("events", 1), ("events", 2)],
        interrupt=True,
        max_event_size=64,
        on_oversize="skip",
    )
    assert pieces == [["a"], ["b", "c"]]


@pytest.mark.parametrize("kind", KINDS)
def test_a_post_stream_goes_on_after_a_break(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("tok1", id="1"), event("tok2", id="2"), stall()]))
    pieces = run_in_pieces(
        kind, server.url, [("events", 1), ("events", 1)], method="POST", json={"q": "hi"}
    )
    assert pieces == [["tok1"], ["tok2"]]
    assert [request.method for request in server.requests] == ["POST"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_post_stream_cannot_be_interrupted(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("tok1", id="1"), event("tok2", id="2"), stall()]))
    with pytest.raises(StreamInterruptedError, match="does not reconnect"):
        run_in_pieces(
            kind,
            server.url,
            [("events", 1), ("events", 1)],
            interrupt=True,
            method="POST",
            json={"q": "hi"},
        )
    assert [request.method for request in server.requests] == ["POST"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_that_ended_gives_nothing_more(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("a", id="1")]), Response(204))
    pieces = run_in_pieces(kind, server.url, [("events", 5), ("events", 5)])
    assert pieces == [["a"], []]
    assert len(server.requests) == 2  # The 204 ended it; the second iteration sent nothing.


def test_an_owned_client_is_closed_when_the_stream_ends_by_itself(server: SSEServer) -> None:
    server.respond(Response(body=[event("a")]), Response(204))
    stream = EventStream(server.url, retry=fast_retry())
    assert [e.data for e in run_bounded(lambda: list(stream))] == ["a"]
    assert stream._client is None  # Released without close() or a with block.


def test_close_from_another_thread_then_a_break_releases_everything(server: SSEServer) -> None:
    server.respond(Response(body=[event("a"), event("b"), stall()]))
    stream = EventStream(server.url, read_timeout=TIMEOUT)

    def consume() -> list[str]:
        got = []
        for item in stream:
            got.append(item.data)
            run_bounded(stream.close)  # From another thread, while this one holds the loop.
            break
        return got

    assert run_bounded(consume) == ["a"]
    assert stream._loop is None
    assert stream._client is None
    server.wait_for_idle(TIMEOUT)


# -- close() while the loop is blocked in a read, with the next chunks on their way ---------------


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _one_then_three() -> Response:
    """Event 1 alone; a moment later events 2, 3 and 4 as three HTTP chunks in one write."""
    rest = b"".join(_chunked(event(f"d{i}", id=str(i))) for i in (2, 3, 4))
    return Response(
        body=[_chunked(event("d1", id="1")), delay(0.1), rest, stall()],
        headers={"Transfer-Encoding": "chunked"},
    )


async def _aclose_while_reading(
    stream: AsyncEventStream, read: Callable[[], Awaitable[None]], got: list[str]
) -> int:
    """Runs ``read`` in a task; once it holds event 1 and reads on, and the next chunks are in
    the socket's buffer, where aclose() cannot stop them (a transport whose socket fastsse
    cannot reach cancels the read instead), closes the stream. Returns how many events the
    reader had then; the stream's loop must be gone before the event loop could finalize it."""
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read)
            while not (got and getattr(stream._loop, "ag_running", False)):
                await anyio.sleep(0.005)
            if stream._waker.socket is not None:
                readable, _, _ = select.select([stream._waker.socket], [], [], TIMEOUT)
                assert readable, "the server's next chunks never came"
            await stream.aclose()
            handed_out = len(got)
        assert stream._loop is None  # The connection went with it.
    return handed_out


@pytest.mark.anyio
@pytest.mark.parametrize("again", ["break", "iterate again"])
@pytest.mark.parametrize("by", ["event", "batch"])
async def test_async_nothing_is_handed_out_after_aclose_from_another_task(
    again: str, by: str
) -> None:
    got: list[str] = []
    async with SSEServer(_one_then_three()) as server:
        stream = AsyncEventStream(server.url, retry=fast_retry())

        async def events() -> AsyncIterator[Event]:
            if by == "event":
                async for e in stream:
                    yield e
            else:
                async for batch in stream.batches():
                    for e in batch:
                        yield e

        async def read() -> None:
            async for e in events():
                got.append(e.id)
                if again == "break" and len(got) > 1:
                    break
            async for e in events():  # A closed stream: nothing, at once.
                got.append(e.id)

        assert await _aclose_while_reading(stream, read, got) == 1
    assert got == ["1"]
    assert stream.last_event_id == "1"


@pytest.mark.anyio
async def test_async_closing_the_event_iterator_after_a_raced_aclose_releases_the_loop() -> None:
    got: list[str] = []
    async with SSEServer(_one_then_three()) as server:
        stream = AsyncEventStream(server.url, retry=fast_retry())

        async def read() -> None:
            events = stream.__aiter__()
            try:
                async for e in events:
                    got.append(e.id)
            finally:
                await events.aclose()

        assert await _aclose_while_reading(stream, read, got) == 1
    assert got == ["1"]


@pytest.mark.parametrize("again", ["break", "iterate again"])
@pytest.mark.parametrize("by", ["event", "batch"])
def test_sync_nothing_is_handed_out_after_close_from_another_thread(again: str, by: str) -> None:
    # Four HTTP chunks in one write: while the handler holds event 1, the other three wait in
    # the client's buffers, where close() (a socket shutdown) cannot stop them.
    chunks = b"".join(_chunked(event(f"d{i}", id=str(i))) for i in (1, 2, 3, 4))
    got: list[str] = []
    holding, closed = threading.Event(), threading.Event()
    with SSEServer(Response(body=[chunks, stall()], headers={"Transfer-Encoding": "chunked"})) as s:
        stream = EventStream(s.url, retry=fast_retry())

        def events() -> Iterator[Event]:
            if by == "event":
                yield from stream
            else:
                for batch in stream.batches():
                    yield from batch

        def read() -> None:
            for e in events():
                got.append(e.id)
                holding.set()
                assert closed.wait(TIMEOUT)
                if again == "break":
                    break
            got.extend(e.id for e in events())  # A closed stream: nothing, at once.

        reader = threading.Thread(target=read)
        reader.start()
        assert holding.wait(TIMEOUT)
        stream.close()
        closed.set()
        reader.join(TIMEOUT)
        assert not reader.is_alive()
    assert got == ["1"]
    assert stream.last_event_id == "1"


# -- a read ended by an exception thrown into it (a cancelled task, Ctrl-C) ----------------------


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_async_a_cancelled_read_leaves_a_stream_that_resumes(method: str) -> None:
    a, b = event("a", id="1"), event("b", id="2")
    feed = resuming(a, b, first=[a, stall()])
    async with SSEServer(feed) as server:
        with anyio.fail_after(TIMEOUT):
            async with AsyncEventStream(server.url, method=method, retry=fast_retry()) as stream:
                assert (await stream.__anext__()).data == "a"
                # The server sends nothing more on this connection: the read is cancelled.
                with anyio.move_on_after(0.05) as scope:
                    await stream.__anext__()
                assert scope.cancelled_caught
                if method == "POST":  # Never sent twice: the stream says so, not silently.
                    with pytest.raises(StreamInterruptedError, match="pass reconnect=True"):
                        await stream.__anext__()
                else:
                    assert (await stream.__anext__()).data == "b"
        requests = server.requests
    assert [r.last_event_id for r in requests] == ([None] if method == "POST" else [None, "1"])


@pytest.mark.anyio
async def test_async_timeouts_around_anext_do_not_cut_the_backoff_short() -> None:
    # Each read is given 0.05 s; the server answers 503 and the backoff waits 5 s: the
    # timeouts end the reads, not the wait, and the server is not asked again meanwhile.
    # The first read is cut only once the 503 was handled (a request cut before its answer is
    # an attempt abandoned, which reconnects at once by design).
    busy = Response(503, b"busy", content_type="text/plain")
    first = anyio.CancelScope()
    delays: list[float | None] = []

    def on_fault(fault: Fault, delay: float | None) -> None:
        delays.append(delay)
        first.cancel()

    async with SSEServer(busy) as server:
        retry = Retry(initial=5.0, jitter=False)
        async with AsyncEventStream(server.url, retry=retry, on_fault=on_fault) as stream:
            with anyio.fail_after(TIMEOUT), first:
                await stream.__anext__()
            assert delays == [5.0]
            for _ in range(5):
                with anyio.move_on_after(0.05) as scope:
                    await stream.__anext__()
                assert scope.cancelled_caught
        requests = server.requests
    assert len(requests) == 1


class _CtrlC(BaseException):
    """Stands for KeyboardInterrupt: a BaseException, which the stream does not catch."""


@pytest.mark.parametrize("kind", KINDS)
def test_a_base_exception_thrown_into_the_loop_leaves_a_stream_that_goes_on(
    server: SSEServer, kind: str
) -> None:
    server.respond(Response(body=[event("a", id="1"), stall()]))
    thrown: list[_CtrlC] = []

    def ctrl_c_once(response: object) -> None:
        if not thrown:
            thrown.append(_CtrlC())
            raise thrown[0]

    options: dict[str, Any] = {"on_connect": ctrl_c_once, "retry": fast_retry()}

    def run() -> str:
        with EventStream(server.url, **options) as stream:
            with pytest.raises(_CtrlC):
                next(stream)
            return next(stream).data

    async def arun() -> str:
        with anyio.fail_after(TIMEOUT):
            async with AsyncEventStream(server.url, **options) as stream:
                with pytest.raises(_CtrlC):
                    await stream.__anext__()
                return (await stream.__anext__()).data

    assert run_bounded(run if kind == "sync" else lambda: anyio.run(arun)) == "a"
    assert len(server.requests) == 2


# -- a stream that failed stays failed: never a silent end after an error ------------------------


class _HookError(Exception):
    """What the caller's on_comment hook raises."""


def _raising_hook(text: str) -> None:
    raise _HookError(text)


#: Errors that end a stream for good: the server's responses, the stream's options (``url``
#: replaces the server's), the error and the events delivered before it.
FINAL_ERRORS: dict[str, tuple[list[Response], dict[str, Any], type[Exception], list[str]]] = {
    "404": ([Response(404, b"nope", content_type="text/plain")], {}, UnexpectedStatusError, []),
    "content type": ([Response(200, b"<p>", content_type="text/html")], {}, ContentTypeError, []),
    "retries exhausted": (
        [Response(500, b"down", content_type="text/plain")] * 2,
        {"retry": fast_retry(max_attempts=1)},
        RetriesExhausted,
        [],
    ),
    "a POST that broke": (
        [Response(body=[event("a"), b"data: cut"])],
        {"method": "POST"},
        StreamInterruptedError,
        ["a"],
    ),
    "invalid request": ([], {"url": "ftp://127.0.0.1/feed"}, InvalidRequestError, []),
    "on_comment raised": (
        [Response(body=[event("a"), comment("ping"), event("b"), stall()])],
        {"on_comment": _raising_hook},
        _HookError,
        ["a"],
    ),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", FINAL_ERRORS)
def test_a_failed_stream_raises_its_error_again_at_every_later_iteration(
    server: SSEServer, kind: str, case: str
) -> None:
    # Every final error (not only an oversized event's) is kept by the machine: a later `for`,
    # anext() or batches() raises it again instead of ending silently.
    responses, options, expected, before = FINAL_ERRORS[case]
    server.respond(*responses)
    options = {"url": server.url, "retry": fast_retry(), "read_timeout": TIMEOUT, **options}
    url = options.pop("url")
    got: list[str] = []
    #: How each iteration ended: the error it raised, or "ended" (silently).
    ends: list[object] = []

    def run() -> None:
        with EventStream(url, **options) as stream:

            def events() -> None:
                for item in stream:
                    got.append(item.data)

            later = (lambda: list(stream), lambda: next(stream), lambda: list(stream.batches()))
            for step in (events, *later):
                try:
                    step()
                    ends.append("ended")
                except Exception as error:
                    ends.append(error)

    async def arun() -> None:
        async def events() -> None:
            async for item in stream:
                got.append(item.data)

        async def batches() -> None:
            [batch async for batch in stream.batches()]

        with anyio.fail_after(TIMEOUT):
            async with AsyncEventStream(url, **options) as stream:
                for step in (events, events, stream.__anext__, batches):
                    try:
                        await step()
                        ends.append("ended")
                    except Exception as error:
                        ends.append(error)

    run_bounded(run if kind == "sync" else lambda: anyio.run(arun))
    assert got == before
    assert isinstance(ends[0], expected), ends
    assert ends == [ends[0]] * 4  # The same error, by `for`, next/anext() and batches().
