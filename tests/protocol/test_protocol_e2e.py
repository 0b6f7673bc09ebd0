"""The machine's rules as a user sees them, end to end: both stream flavours against a real
SSEServer on loopback (issue 15)."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import aiohttp
import anyio
import fastsse
import fastsse.protocol
import pytest
from fastsse import (
    AsyncEventStream,
    EventStream,
    EventTooLargeError,
    FastSSEError,
    RetriesExhausted,
    UnexpectedStatusError,
)
from fastsse._tail import TailOptions, run_tail
from fastsse.testing import Response, SSEServer, event, stall
from support.streams import KINDS, closed_port, collect, fast_retry, run_bounded


async def read_into(iterator: Any, into: list[Any]) -> None:
    async for item in iterator:
        into.append(getattr(item, "data", item))


async def anext_(iterator: Any) -> Any:
    """``anext()``, which Python 3.9 lacks."""
    return await iterator.__anext__()


def _chain(error: BaseException | None) -> list[str]:
    texts = []
    for _ in range(8):
        if error is None:
            break
        texts.append(str(error))
        error = error.__cause__ or error.__context__
    return texts


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", ["refused", "404", "500 retry", "exhausted"])
def test_no_secret_of_the_url_in_logs_or_errors(
    kind: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 15, defect 14.
    caplog.set_level(logging.DEBUG, logger="fastsse")
    with SSEServer() as server:
        port = closed_port() if path == "refused" else server.port
        if path == "404":
            server.respond(Response(404, b"no such feed", content_type="text/plain"))
        elif path == "500 retry":
            server.respond(Response(500, b"oops", content_type="text/plain"), Response(204))
        elif path == "exhausted":
            server.respond(*[Response(503, b"busy", content_type="text/plain")] * 3)
        url = f"http://user:s3cret@127.0.0.1:{port}/feed?api_key=SECRETKEY"
        faults: list[str] = []
        outcome = collect(
            kind,
            url,
            retry=fast_retry(max_attempts=2),
            headers={"X-Token": "HEADERSECRET"},
            on_fault=lambda fault, _: faults.append(fault.message),
        )
    texts = [record.getMessage() for record in caplog.records] + faults
    texts += _chain(outcome.error)
    if path == "500 retry":
        assert outcome.error is None
        assert any("answered 500" in text for text in texts)
    elif path == "404":
        assert isinstance(outcome.error, UnexpectedStatusError)
    else:
        assert isinstance(outcome.error, RetriesExhausted)
    assert any("user:[secure]@127.0.0.1" in text for text in texts)
    assert any("api_key=[secure]" in text for text in texts)
    for text in texts:
        for secret in ("s3cret", "SECRETKEY", "HEADERSECRET"):
            assert secret not in text, text


@pytest.mark.parametrize("kind", KINDS)
def test_an_oversized_event_ends_the_stream_and_every_later_iteration_raises(kind: str) -> None:
    # Issue 15, defect 5, as a user sees it: both flavours, event by event and by batches.
    body = [b"id: 1\ndata: a\n\ndata: " + b"x" * 64 + b"\n\nid: 3\ndata: c\n\n"]
    with SSEServer(Response(body=body)) as server:
        if kind == "sync":
            stream = EventStream(server.url, max_event_size=32, retry=fast_retry())
            seen: list[str] = []
            with pytest.raises(EventTooLargeError) as info:
                seen.extend(event.data for event in stream)
            assert seen == ["a", "c"]  # the events of its chunk come first
            assert stream.closed
            for again in (
                lambda: list(stream),
                lambda: next(stream),
                lambda: list(stream.batches()),
            ):
                with pytest.raises(EventTooLargeError) as later:
                    run_bounded(again)
                assert later.value is info.value
            stream.close()
        else:

            async def main() -> None:
                stream = AsyncEventStream(server.url, max_event_size=32, retry=fast_retry())
                seen: list[str] = []
                with pytest.raises(EventTooLargeError) as info:
                    await read_into(stream, seen)
                assert seen == ["a", "c"]  # the events of its chunk come first
                assert stream.closed
                with pytest.raises(EventTooLargeError) as later:
                    await read_into(stream, [])
                assert later.value is info.value
                with pytest.raises(EventTooLargeError):
                    await anext_(stream)
                with pytest.raises(EventTooLargeError):
                    await read_into(stream.batches(), [])
                await stream.aclose()

            run_bounded(lambda: anyio.run(main))
        assert len(server.requests) == 1  # not reconnected


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # LaunchDarkly's sse-contract-tests: "comment before event" ...
        (b":Hello\ndata: hello\n\n", ["comment Hello", "event hello"]),
        # ... and "BOM with comment at start".
        (b"\xef\xbb\xbf:Hello\ndata: hello\n\n", ["comment Hello", "event hello"]),
        (
            b"data: a\n\n: between\ndata: b\n\n: after\n",
            ["event a", "comment between", "event b", "comment after"],
        ),
    ],
)
def test_comments_and_events_reach_the_caller_in_wire_order(
    kind: str, body: bytes, expected: list[str]
) -> None:
    # Issue 15, defect 6: the body is sent in one write, so one chunk holds it all.
    seen: list[str] = []
    with SSEServer(Response(body=[body]), Response(204)) as server:
        options: dict[str, Any] = {
            "retry": fast_retry(),
            "on_comment": lambda text: seen.append(f"comment {text}"),
        }
        if kind == "sync":

            def consume() -> None:
                with EventStream(server.url, **options) as stream:
                    seen.extend(f"event {event.data}" for event in stream)

            run_bounded(consume)
        else:

            async def main() -> None:
                async with AsyncEventStream(server.url, **options) as stream:
                    async for event in stream:
                        seen.append(f"event {event.data}")

            run_bounded(lambda: anyio.run(main))
    assert seen == expected


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [301, 307])
def test_a_redirect_to_an_empty_location_fails_with_a_fastsse_error(kind: str, status: int) -> None:
    # Issue 15, defect 8.
    faults: list[Any] = []
    redirect = Response(status, b"", {"Location": ""}, content_type=None)
    with SSEServer(*[redirect] * 25) as server:
        outcome = collect(
            kind, server.url, on_fault=lambda fault, delay: faults.append((fault, delay))
        )
    assert isinstance(outcome.error, FastSSEError)
    assert isinstance(outcome.error, UnexpectedStatusError)
    assert "the redirects do not end" in str(outcome.error)
    assert [(fault.kind, delay) for fault, delay in faults] == [("redirect", None)]
    assert faults[0][0].error is outcome.error


def test_a_read_cancelled_from_outside_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 15, defect 7: asyncio.wait_for(anext(stream), 0.3), then the stream resumed.
    caplog.set_level(logging.INFO, logger="fastsse")
    with SSEServer(
        Response(body=[event("a", id="1"), stall()]),
        Response(body=[event("b", id="2")]),
        Response(204),
    ) as server:

        async def main() -> tuple[list[str], Any, str | None]:
            async with AsyncEventStream(server.url, retry=fast_retry()) as stream:
                first = await anext_(stream)
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(anext_(stream), 0.3)
                rest = [event.data async for event in stream]
                return [first.data, *rest], stream.stats, server.requests[1].last_event_id

        data, stats, resumed_from = run_bounded(lambda: anyio.run(main))
    assert data == ["a", "b"]
    assert resumed_from == "1"
    assert stats.reconnects == 2  # the cancelled read, then the clean end before the 204
    messages = [r.getMessage() for r in caplog.records]
    assert any("cancelled from outside" in m and "reconnecting now" in m for m in messages)


def documented_driver() -> str:
    """The aiohttp driver that fastsse.protocol's docstring shows (and the README)."""
    doc = fastsse.protocol.__doc__ or ""
    block = doc.split("::\n\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return "\n".join(lines)


def test_the_documented_driver_over_a_raw_aiohttp_response_works() -> None:
    # Issue 15, Deliver 1: the few lines the docs show, run as they are, against a real server.
    source = documented_driver()
    assert "machine.next_action()" in source
    assert "machine.feed(chunk)" in source
    namespace: dict[str, Any] = {}
    exec(compile(source, "fastsse.protocol docstring", "exec"), namespace)
    with SSEServer(
        Response(body=[event("a", id="1"), b"retry: 10\n", event("b", id="2")]),
        Response(404, b'{"detail": "gone"}\n', content_type="application/json"),
    ) as server:

        async def main() -> tuple[list[str], BaseException | None]:
            seen: list[str] = []
            async with aiohttp.ClientSession() as session:
                try:
                    async for item in namespace["events"](session, server.url_for("/feed?x=1")):
                        seen.append(f"{item.id}:{item.data}")
                except fastsse.FastSSEError as error:
                    return seen, error
            return seen, None

        seen, error = run_bounded(lambda: anyio.run(main), timeout=10.0)
        requests = server.requests
    assert seen == ["1:a", "2:b"]
    assert isinstance(error, UnexpectedStatusError)
    assert 'answered 404 Not Found: {"detail": "gone"}' in str(error)
    assert error.response.status_code == 404
    assert [r.header("accept") for r in requests] == ["text/event-stream"] * 2
    assert [r.last_event_id for r in requests] == [None, "2"]


def test_response_head_reads_headers_in_any_case() -> None:
    head = fastsse.protocol.ResponseHead(
        200, [("content-type", "text/event-stream; charset=utf-8")], "http://h/", None
    )
    machine = fastsse.protocol.StreamMachine("http://h/")
    machine.next_action()
    assert machine.response(head) is fastsse.protocol.Verdict.STREAM
    assert head.headers.get("Content-Type") == "text/event-stream; charset=utf-8"
    assert head.reason_phrase == ""
    with pytest.raises(TypeError):
        fastsse.protocol.ResponseHead("200")  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [404, 0])
def test_fastsse_tail_shows_no_secret_of_the_url(status: int) -> None:
    # Issue 15, defect 14, for `fastsse tail`: its reconnect lines and its error line.
    with SSEServer() as server:
        if status:
            server.respond(
                Response(500, b"oops", content_type="text/plain"),
                Response(status, b"SECRETKEY not found", content_type="text/plain"),
            )
            port = server.port
        else:
            port = closed_port()
        url = f"http://user:s3cret@127.0.0.1:{port}/feed?api_key=SECRETKEY"
        out, err = io.StringIO(), io.StringIO()
        code = run_bounded(lambda: run_tail(TailOptions(url, [], timeout=1.0), out, err), 20.0)
    text = err.getvalue()
    assert code == 1
    assert "error:" in text
    assert "[secure]" in text
    assert "s3cret" not in text
    assert "SECRETKEY" not in text


def test_an_invalid_url_is_refused_without_its_secrets() -> None:
    with pytest.raises(ValueError, match="is not a valid URL") as info:
        EventStream("http://user:s3cret@[::1/feed?token=SECRETKEY")
    assert "s3cret" not in str(info.value)
    assert "SECRETKEY" not in str(info.value)
