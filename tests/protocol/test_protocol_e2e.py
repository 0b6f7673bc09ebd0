"""The machine's rules as a user sees them, end to end: both stream flavours against a real
SSEServer on loopback (issue 15)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
from fastsse import (
    AsyncEventStream,
    EventStream,
    EventTooLargeError,
    FastSSEError,
    RetriesExhausted,
    UnexpectedStatusError,
)
from fastsse.testing import Response, SSEServer
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
