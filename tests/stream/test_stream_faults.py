"""What a user sees when things go wrong: WARNING logs, the on_fault / on_connect / on_comment
hooks, errors that name the URL and say what to do, and the README's example against a closed
port."""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import fastsse
import httpx
import pytest
from fastsse import (
    AsyncEventStream,
    EventStream,
    Fault,
    InvalidRequestError,
    RetriesExhausted,
    StreamInterruptedError,
)
from fastsse._io.http import classify
from fastsse.testing import Response, SSEServer, abort, close, comment, event, split, stall
from support.streams import (
    KINDS,
    TIMEOUT,
    closed_port,
    collect,
    fast_retry,
    run_bounded,
    transport_error,
)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "fastsse" and r.levelno == logging.WARNING
    ]


def busy() -> Response:
    return Response(503, b"try later\nsecond line", content_type="text/plain")


# -- WARNING logs ------------------------------------------------------------------------------

RECONNECT = re.compile(r"; reconnect attempt (\d+)( of \d+)? in (\d+\.\d\d) s$")


@pytest.mark.parametrize("kind", KINDS)
def test_connection_refused_is_logged_with_url_cause_attempt_and_delay(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/feed"
    with caplog.at_level(logging.WARNING, logger="fastsse"):
        outcome = collect(kind, url, retry=fast_retry(max_attempts=2))
    assert isinstance(outcome.error, RetriesExhausted)
    logged = warnings_of(caplog)
    assert len(logged) == 2  # one per reconnect; the final failure is the exception
    for number, line in enumerate(logged, 1):
        assert line.startswith(f"GET {url}: connection refused"), line
        match = RECONNECT.search(line)
        assert match is not None, line
        assert match.group(1) == str(number)
        assert match.group(2) == " of 2"


@pytest.mark.parametrize("kind", KINDS)
def test_a_retried_status_is_logged_with_the_first_line_of_its_body(
    server: SSEServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.respond(busy(), Response(204))
    with caplog.at_level(logging.WARNING, logger="fastsse"):
        assert collect(kind, server.url).error is None
    (line,) = warnings_of(caplog)
    assert line.startswith(f"GET {server.url}: answered 503 Service Unavailable: try later…;")
    assert "second line" not in line
    assert RECONNECT.search(line) is not None


@pytest.mark.parametrize("kind", KINDS)
def test_a_clean_end_is_logged_and_explained(
    server: SSEServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.respond(Response(body=[event("a"), close()]), Response(204))
    with caplog.at_level(logging.INFO, logger="fastsse"):
        assert collect(kind, server.url).error is None
    # A clean end that reconnects is routine (servers rotate connections): INFO, no WARNING.
    assert warnings_of(caplog) == []
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    (line,) = [m for m in infos if "the server closed the stream" in m]
    assert "a 204 response or reconnect=False ends it" in line
    assert "reconnect attempt 1 in" in line
    assert any("answered 204 No Content: the stream is over" in m for m in infos)


@pytest.mark.parametrize("kind", KINDS)
def test_a_read_timeout_and_a_broken_connection_are_logged_in_words(
    server: SSEServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.respond(
        Response(body=[event("a", id="1"), stall()]),
        Response(body=[event("b", id="2"), abort()]),
        Response(204),
    )
    with caplog.at_level(logging.WARNING, logger="fastsse"):
        assert collect(kind, server.url, read_timeout=0.2).error is None
    # A loaded machine may be slower than 0.2 s to answer a request too: that is one more
    # timeout in the log, never a missing or misworded line.
    lines = warnings_of(caplog)
    timed_out = [i for i, line in enumerate(lines) if "no data for 0.2 s (read_timeout)" in line]
    broke = [i for i, line in enumerate(lines) if "the connection broke" in line]
    assert timed_out
    assert len(broke) == 1
    assert timed_out[0] < broke[0]


def test_dns_and_other_connect_failures_are_classified() -> None:
    dns = httpx.ConnectError("[Errno -2] Name or service not known")
    dns.__cause__ = socket.gaierror(-2, "Name or service not known")
    assert classify(dns) == "dns"
    refused = httpx.ConnectError("All connection attempts failed")
    refused.__context__ = OSError("All connection attempts failed")
    refused.__context__.__cause__ = ConnectionRefusedError(111, "Connect call failed")
    assert classify(refused) == "refused"
    assert classify(httpx.ConnectError("certificate verify failed")) == "connect"
    assert classify(httpx.ConnectTimeout("timed out")) == "connect_timeout"
    assert classify(httpx.ReadTimeout("timed out")) == "read_timeout"
    assert classify(httpx.RemoteProtocolError("peer closed")) == "broken"
    assert classify(httpx.UnsupportedProtocol("ftp")) == "invalid_request"
    assert classify(fastsse.SSEError("ours")) is None
    assert classify(ValueError("not httpx")) is None


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_stream_example_as_a_script(url: str) -> str:
    """The README's first stream example (a script, as pasted into a file), reading ``url``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (example,) = [block for block in blocks if "AsyncEventStream(" in block][:1]
    assert "asyncio.run(" in example, "the first stream example runs as a script"
    return example.replace("https://example.com/feed", url)


def test_the_readme_example_against_a_closed_port_warns_within_three_seconds() -> None:
    url = f"http://127.0.0.1:{closed_port()}/feed"
    script = readme_stream_example_as_a_script(url)
    assert url in script
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-c", script], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline().decode().rstrip("\n")  # bounded: killed below
    finally:
        process.kill()
        process.wait(5.0)
    assert time.monotonic() - started < 3.0, line
    # The line the README shows, but for the URL and the (jittered) delay.
    shown = re.search(
        r"\n    (GET https://example.com/feed: connection refused.*)\n", README.read_text()
    )
    assert shown is not None
    expected = re.escape(shown.group(1).replace("https://example.com/feed", url))
    assert re.fullmatch(expected.replace(r"0\.25", r"\d+\.\d\d"), line), line


# -- hooks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_on_connect_and_on_fault_report_each_connection_and_fault(
    server: SSEServer, kind: str
) -> None:
    server.respond(
        busy(),
        Response(body=[event("a", id="1"), close()], headers={"X-Request-Id": "r1"}),
        Response(404, b"gone", content_type="text/plain"),
    )
    connected: list[httpx.Response] = []
    faults: list[tuple[Fault, float | None]] = []
    outcome = collect(
        kind,
        server.url,
        on_connect=connected.append,
        on_fault=lambda fault, delay: faults.append((fault, delay)),
    )
    assert isinstance(outcome.error, fastsse.UnexpectedStatusError)
    (response,) = connected
    assert (response.status_code, response.headers["x-request-id"]) == (200, "r1")
    assert [(fault.kind, fault.attempt, delay is None) for fault, delay in faults] == [
        ("status", 1, False),
        # The connection delivered an event: the backoff starts over, attempts (what
        # max_attempts bounds) count from 1 again and the delay is the initial one.
        ("closed", 1, False),
        ("status", 0, True),  # the 404 ends the stream: no next delay
    ]
    first, second, last = (fault for fault, _ in faults)
    assert first.response is not None
    assert first.response.status_code == 503
    assert "503" in first.message
    assert isinstance(first.error, fastsse.UnexpectedStatusError)
    assert second.error is None
    assert second.response is response  # the stream that the server closed
    assert last.error is outcome.error
    assert faults[0][1] == pytest.approx(0.005)
    assert faults[1][1] == pytest.approx(0.005)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["at once", "after an event"])
def test_a_malformed_response_is_a_broken_connection(
    server: SSEServer, kind: str, where: str
) -> None:
    # Chunked framing that no HTTP parser accepts (h11's and aiohttp's alike), on a connection
    # the server keeps open: the stream reconnects as after any broken connection, at once.
    first = b"%x\r\n%s\r\n" % (len(event("a", id="1")), event("a", id="1"))
    server.respond(
        Response(
            body=[first if where == "after an event" else b"", b"zz\r\n", stall()],
            headers={"Transfer-Encoding": "chunked"},
        ),
        Response(body=[event("b", id="2"), close()]),
        Response(204),
    )
    faults: list[Fault] = []
    outcome = collect(kind, server.url, on_fault=lambda fault, delay: faults.append(fault))
    assert outcome.error is None
    assert faults[0].kind == "broken"
    # h11 hands out the good chunk before it meets the bad one; aiohttp may reject the whole
    # response at once. Either way the resume id is that of the last event handed out.
    expected = (["a", "b"], ["b"]) if where == "after an event" else (["b"],)
    assert outcome.data in expected
    assert server.requests[1].last_event_id == ("1" if outcome.data[0] == "a" else None)


class HookError(Exception):
    pass


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("hook", ["on_connect", "on_fault"])
def test_an_exception_raised_by_a_hook_ends_the_stream_with_it(
    server: SSEServer, kind: str, hook: str
) -> None:
    server.respond(busy(), Response(body=[event("a"), stall()]))
    calls: list[tuple[object, ...]] = []

    def fail(*args: object) -> None:
        calls.append(args)
        raise HookError(hook)

    outcome = collect(kind, server.url, **{hook: fail})
    assert isinstance(outcome.error, HookError)
    assert len(calls) == 1
    assert outcome.data == []
    assert len(server.requests) == (1 if hook == "on_fault" else 2)
    server.wait_for_idle(TIMEOUT)  # the stalled connection was closed


def consume_logging_comments(kind: str, url: str, **options: Any) -> list[tuple[str, str]]:
    """Events and comments of a stream, as ("event", data) and ("comment", text), in the order
    the consumer saw them."""
    seen: list[tuple[str, str]] = []
    options.setdefault("retry", fast_retry())

    def on_comment(text: str) -> None:
        seen.append(("comment", text))

    if kind == "sync":

        def consume() -> None:
            with EventStream(url, on_comment=on_comment, **options) as stream:
                for event in stream:
                    seen.append(("event", event.data))

        run_bounded(consume)
    else:

        async def consume_async() -> None:
            with anyio.fail_after(TIMEOUT):
                async with AsyncEventStream(url, on_comment=on_comment, **options) as stream:
                    async for event in stream:
                        seen.append(("event", event.data))

        run_bounded(lambda: anyio.run(consume_async))
    return seen


@pytest.mark.parametrize("kind", KINDS)
def test_on_comment_receives_the_servers_heartbeats(server: SSEServer, kind: str) -> None:
    server.respond(
        Response(
            body=[
                comment("hello"),
                event("a"),
                comment("ping\nsecond line"),  # two comment lines
                *split(comment("é"), at=[1, 3]),  # split inside the colon's space and the é
                event("b") + comment("after b"),  # one write: the event is handed out first
                b":no space\n:\n",
                close(),
            ]
        )
    )
    seen = consume_logging_comments(kind, server.url, reconnect=False)
    comments = [text for what, text in seen if what == "comment"]
    assert comments == ["hello", "ping", "second line", "é", "after b", "no space", ""]
    assert [text for what, text in seen if what == "event"] == ["a", "b"]
    assert seen.index(("comment", "after b")) > seen.index(("event", "b"))
    assert seen.index(("comment", "ping")) > seen.index(("event", "a"))


@pytest.mark.parametrize("kind", KINDS)
def test_an_on_comment_that_raises_ends_the_stream_after_the_chunks_events(
    server: SSEServer, kind: str
) -> None:
    server.respond(Response(body=[event("a") + comment("boom"), stall()]))
    calls: list[str] = []

    def fail(text: str) -> None:
        calls.append(text)
        raise HookError(text)

    outcome = collect(kind, server.url, on_comment=fail)
    assert isinstance(outcome.error, HookError)
    assert (calls, outcome.data) == (["boom"], ["a"])
    server.wait_for_idle(TIMEOUT)  # the stalled connection was closed


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("by", ["a hook", "another thread"])
def test_nothing_of_a_chunk_reaches_the_caller_after_close(
    server: SSEServer, kind: str, by: str
) -> None:
    # One write, so one chunk: handed out segment by segment (comments in wire order). close()
    # from on_comment, or from another thread while the reader holds event "a": no later hook
    # of that chunk runs, no later event of it is handed out.
    if by == "a hook":
        chunk = event("a") + comment("close") + comment("two") + event("b") + comment("three")
    else:
        chunk = event("a") + comment("one") + event("b") + comment("two")
    server.respond(Response(body=[chunk, stall()]))
    seen: list[str] = []
    streams: list[Any] = []

    def on_comment(text: str) -> None:
        seen.append(f"comment {text}")
        if text == "close":
            streams[0].close()  # The async stream's close() needs no await.

    def on_event(data: str) -> None:
        seen.append(f"event {data}")
        if data == "a" and by == "another thread":
            run_bounded(streams[0].close)

    options: dict[str, Any] = {"on_comment": on_comment, "retry": fast_retry()}

    def run() -> None:
        with EventStream(server.url, **options) as stream:
            streams.append(stream)
            for item in stream:
                on_event(item.data)

    async def arun() -> None:
        with anyio.fail_after(TIMEOUT):
            async with AsyncEventStream(server.url, **options) as stream:
                streams.append(stream)
                async for item in stream:
                    on_event(item.data)

    run_bounded(run if kind == "sync" else lambda: anyio.run(arun))
    expected = {"a hook": ["event a", "comment close"], "another thread": ["event a"]}
    assert seen == expected[by]
    assert streams[0].closed
    assert len(server.requests) == 1


# -- errors name the URL and say what to do ------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_retries_exhausted_names_the_url_the_cause_and_the_response(
    server: SSEServer, kind: str
) -> None:
    server.respond(busy())
    outcome = collect(kind, server.url, retry=fast_retry(max_attempts=1))
    error = outcome.error
    assert isinstance(error, RetriesExhausted)
    assert str(error).startswith(f"GET {server.url}: gave up after 1 reconnect attempt;")
    assert "answered 503 Service Unavailable: try later" in str(error)
    assert "Retry(max_attempts=" in str(error)
    assert error.url == f"GET {server.url}"
    assert error.response is not None
    assert error.response.status_code == 503
    assert isinstance(error.last_cause, fastsse.UnexpectedStatusError)


@pytest.mark.parametrize("kind", KINDS)
def test_retries_exhausted_after_a_read_timeout_carries_the_silent_response(
    server: SSEServer, kind: str
) -> None:
    server.respond(Response(body=[event("a"), stall()], headers={"X-Id": "silent"}))
    outcome = collect(kind, server.url, read_timeout=0.1, retry=fast_retry(max_attempts=0))
    error = outcome.error
    assert isinstance(error, RetriesExhausted)
    assert "no data for 0.1 s (read_timeout)" in str(error)
    assert error.response is not None
    assert error.response.headers["x-id"] == "silent"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("url", "detail"),
    [("ftp://127.0.0.1/feed", "unsupported protocol"), ("/relative", "missing an 'http://'")],
)
def test_a_request_that_cannot_be_sent_fails_at_once_as_a_fastsse_error(
    kind: str, url: str, detail: str
) -> None:
    faults: list[Fault] = []
    outcome = collect(kind, url, on_fault=lambda fault, delay: faults.append(fault))
    error = outcome.error
    assert isinstance(error, InvalidRequestError)
    assert isinstance(error, fastsse.FastSSEError)
    assert isinstance(error, ValueError)
    assert f"GET {url} cannot be sent" in str(error)
    assert detail in str(error)
    assert "http:// or https://" in str(error)
    assert isinstance(error.__cause__, transport_error("UnsupportedProtocol"))
    assert [(fault.kind, fault.error) for fault in faults] == [("invalid_request", error)]
    assert outcome.stats.reconnects == 0


@pytest.mark.parametrize("kind", KINDS)
def test_status_errors_say_what_to_do(server: SSEServer, kind: str) -> None:
    for status, advice in [
        (401, "check the credentials"),
        (404, "check the URL"),
        (405, "check the method"),
    ]:
        server.respond(Response(status, b"no", content_type="text/plain"))
        error = collect(kind, server.url).error
        assert isinstance(error, fastsse.UnexpectedStatusError)
        assert f"GET {server.url} answered {status}" in str(error)
        assert advice in str(error)


@pytest.mark.parametrize("kind", KINDS)
def test_an_oversized_event_error_names_the_url_and_the_ways_out(
    server: SSEServer, kind: str
) -> None:
    server.respond(Response(body=[event("x" * 2000)]))
    error = collect(kind, server.url, max_event_size=1000).error
    assert isinstance(error, fastsse.EventTooLargeError)
    assert str(error).startswith(f"GET {server.url}: an event exceeded max_event_size")
    assert "on_oversize='skip'" in str(error)
    assert error.max_event_size == 1000
    assert error.response is not None
    assert error.response.status_code == 200


@pytest.mark.parametrize("kind", KINDS)
def test_a_broken_post_error_carries_its_response(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("tok1"), b"data: to", abort()], headers={"X-Id": "7"}))
    error = collect(kind, server.url, method="POST", json={}).error
    assert isinstance(error, StreamInterruptedError)
    assert f"POST stream from {server.url} broke (the connection broke" in str(error)
    assert error.response is not None
    assert error.response.headers["x-id"] == "7"


@pytest.mark.parametrize("kind", KINDS)
def test_a_post_that_cannot_connect_says_so_and_offers_a_retry(kind: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}/chat"
    error = collect(kind, url, method="POST", json={}).error
    assert isinstance(error, StreamInterruptedError)
    assert str(error) == (
        f"the POST stream from {url} got no response (connection refused (is the server up, "
        "and is the port right?)); it does not reconnect (pass reconnect=True to retry it)"
    )
    assert error.response is None
    assert isinstance(error.__cause__, transport_error("ConnectError"))
