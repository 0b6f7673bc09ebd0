"""The stream's decisions without any I/O: StreamMachine driven by hand, as a driver would."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import fastsse
import fastsse.protocol
import httpx
import pytest
from fastsse import (
    InvalidRequestError,
    RetriesExhausted,
    Retry,
    StreamInterruptedError,
    UnexpectedStatusError,
)
from fastsse.protocol import STOP, Send, StreamMachine, Verdict, Wait

URL = "http://example.test/feed"


@dataclass
class FakeResponse:
    status_code: int = 200
    reason_phrase: str = "OK"
    headers: httpx.Headers = field(
        default_factory=lambda: httpx.Headers({"Content-Type": "text/event-stream"})
    )
    url: str = URL


class FakeClock:
    """The machine's clock: time passes when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def machine(**options: Any) -> StreamMachine:
    defaults: dict[str, Any] = {
        "method": "GET",
        "headers": [],
        "last_event_id": "",
        "retry": Retry(initial=1.0, multiplier=2.0, jitter=False),
        "reconnect": None,
        "read_timeout": 300.0,
        "max_event_size": 1024,
        "on_oversize": "error",
        "clock": FakeClock(),
    }
    defaults.update(options)
    return StreamMachine(URL, **defaults)


def send(m: StreamMachine) -> Send:
    action = m.next_action()
    assert isinstance(action, Send), action
    return action


def test_the_first_request_has_the_sse_headers_and_the_callers() -> None:
    m = machine(headers=[(b"X-Token", b"t"), (b"last-event-id", b"41")])
    action = send(m)
    assert (action.method, action.url) == ("GET", URL)
    assert action.headers == [
        (b"X-Token", b"t"),
        (b"Accept", b"text/event-stream"),
        (b"Cache-Control", b"no-cache"),
        (b"Last-Event-ID", b"41"),
    ]


@pytest.mark.parametrize("given", [[], [(b"X-Token", b"t")]])
def test_each_request_has_headers_of_its_own(given: list[tuple[bytes, bytes]]) -> None:
    # Machines given no headers share their standard ones: a driver that changes the list a
    # request came with changes nothing for the next request, nor for another machine's.
    first, other = machine(headers=given), machine(headers=given)
    sent = send(first)
    expected = list(sent.headers)
    sent.headers.append((b"X-Added", b"by a driver"))
    sent.headers[0] = (b"Accept", b"text/plain")
    first.failed("refused", ConnectionRefusedError("refused"))
    assert isinstance(first.next_action(), Wait)
    first.interrupt()  # no wait: the next action is the request again
    assert send(first).headers == expected
    assert send(other).headers == expected


def test_a_stream_then_a_clean_end_then_a_resumed_request() -> None:
    clock = FakeClock()
    m = machine(clock=clock)
    send(m)
    assert m.response(FakeResponse()) is Verdict.STREAM
    events = m.feed(b"id: 1\ndata: a\n\ndata: par")
    assert [(e.id, e.data) for e in events] == [("1", "a")]
    m.raise_deferred()
    m.ended()
    m.end_response()
    assert m.stats.dropped == 1  # the partial event
    assert m.next_action() == Wait(1.0)
    clock.now += 1.0
    assert (b"Last-Event-ID", b"1") in send(m).headers
    assert (m.stats.connections, m.stats.reconnects, m.stats.errors) == (1, 1, 0)


def test_204_stops() -> None:
    m = machine()
    send(m)
    assert m.response(FakeResponse(204, "No Content")) is Verdict.STOP
    m.end_response()
    assert m.next_action() is STOP
    assert m.done


def test_a_retryable_status_waits_at_least_its_retry_after() -> None:
    m = machine()
    send(m)
    headers = httpx.Headers({"Retry-After": "7", "Content-Type": "text/plain"})
    assert m.response(FakeResponse(503, "Service Unavailable", headers)) is Verdict.PREVIEW
    m.refused(b"busy\nmore")
    m.end_response()
    assert m.next_action() == Wait(7.0)
    assert m.stats.errors == 1


def test_a_4xx_fails_with_its_body() -> None:
    m = machine()
    send(m)
    headers = httpx.Headers({"Content-Type": "text/plain"})
    assert m.response(FakeResponse(404, "Not Found", headers)) is Verdict.PREVIEW
    with pytest.raises(
        UnexpectedStatusError, match="answered 404 Not Found: nope; check the URL"
    ) as info:
        m.refused(b"nope")
    m.end_response()
    with pytest.raises(UnexpectedStatusError) as again:  # Final: never a silent end.
        m.next_action()
    assert again.value is info.value


def test_failures_grow_the_delay_then_give_up() -> None:
    clock = FakeClock()
    retry = Retry(initial=1.0, multiplier=2.0, jitter=False, max_attempts=2)
    m = machine(retry=retry, clock=clock)
    delays = []
    for _ in range(2):
        send(m)
        m.failed("refused", ConnectionRefusedError())
        action = m.next_action()
        assert isinstance(action, Wait)
        delays.append(action.seconds)
        clock.now += action.seconds
    send(m)
    m.failed("refused", ConnectionRefusedError())
    with pytest.raises(RetriesExhausted, match="gave up after 2 reconnect attempts") as info:
        m.next_action()
    assert delays == [1.0, 2.0]
    with pytest.raises(RetriesExhausted) as again:  # Final: never a silent end.
        m.next_action()
    assert again.value is info.value


def test_a_wait_cut_short_goes_on_until_its_end() -> None:
    # A driver whose wait was cut short (a cancelled task, a timeout around anext()) asks
    # again: it is told to wait what is left, not to send at once.
    clock = FakeClock()
    m = machine(clock=clock)
    send(m)
    m.failed("refused", ConnectionRefusedError())
    assert m.next_action() == Wait(1.0)
    clock.now += 0.25
    assert m.next_action() == Wait(0.75)
    assert m.next_action() == Wait(0.75)  # No time passed: the same wait.
    clock.now += 0.75
    send(m)
    assert m.requests == 2


def test_interrupt_ends_a_wait() -> None:
    clock = FakeClock()
    m = machine(clock=clock)
    send(m)
    m.failed("refused", ConnectionRefusedError())
    assert m.next_action() == Wait(1.0)
    m.interrupt()
    send(m)
    m.failed("refused", ConnectionRefusedError())
    assert m.next_action() == Wait(2.0)  # A new wait, whole.


def test_a_post_is_sent_once_and_a_cut_raises() -> None:
    m = machine(method="post")
    assert send(m).method == "POST"
    m.response(FakeResponse())
    m.feed(b"data: par")
    m.ended()
    m.end_response()
    with pytest.raises(StreamInterruptedError, match="ended in the middle of an event"):
        m.next_action()


def test_close_stops_and_silences_later_failures() -> None:
    m = machine()
    send(m)
    m.close()
    m.failed("broken", OSError())
    assert m.next_action() is STOP
    assert m.stats.errors == 0


def test_interrupt_skips_the_wait_and_resends_at_once() -> None:
    m = machine()
    send(m)
    m.response(FakeResponse())
    m.interrupt()
    m.failed("broken", OSError())  # the shut-down socket
    m.end_response()
    send(m)
    assert not m.interrupted
    assert m.stats.errors == 0


def test_a_request_that_cannot_be_sent_fails_at_once() -> None:
    m = machine()
    send(m)
    m.failed("invalid_request", ValueError("Request URL has an unsupported protocol 'ftp://'."))
    with pytest.raises(InvalidRequestError, match="cannot be sent: Request URL has an unsupp"):
        m.next_action()


def test_a_response_that_arrives_after_close_is_not_read() -> None:
    connected: list[object] = []
    m = machine(on_connect=connected.append)
    send(m)
    m.close()  # from another thread, while the request was on its way
    assert m.response(FakeResponse()) is Verdict.STOP
    m.end_response()
    assert m.next_action() is STOP
    assert connected == []
    assert m.stats.connections == 0


def test_a_post_is_never_sent_twice_even_by_a_driver_that_asks_again() -> None:
    m = machine(method="POST")
    send(m)
    m.end_response()  # no ending reported: a driver bug must not re-send the request
    with pytest.raises(StreamInterruptedError, match="pass reconnect=True") as info:
        m.next_action()
    with pytest.raises(StreamInterruptedError) as again:  # Final: never a silent end.
        m.next_action()
    assert again.value is info.value
    assert m.requests == 1


def drive(m: StreamMachine, chunk: bytes, seen: list[str]) -> None:
    """A driver's per-chunk steps: what it delivers, in order, goes to ``seen``."""
    seen.extend(f"event {event.data}" for event in m.feed(chunk))
    for _ in range(100):
        if not m.has_deferred_work:
            return
        seen.extend(f"event {event.data}" for event in m.next_segment())
    raise AssertionError("next_segment() never ended the chunk")


def test_comments_and_events_reach_the_caller_in_wire_order() -> None:
    # Issue 15, defect 6.
    seen: list[str] = []
    m = machine(on_comment=lambda text: seen.append(f"comment {text}"), max_event_size=8)
    send(m)
    assert m.response(FakeResponse()) is Verdict.STREAM
    events = m.feed(b"data: a\n\n: first\ndata: b\n\ndata: c\n\n: second\n:0123456789\n: cut")
    assert [event.data for event in events] == ["a"]  # up to the first comment
    assert seen == []  # the driver delivers them first
    assert m.has_deferred_work
    assert [event.data for event in m.next_segment()] == ["b", "c"]
    assert seen == ["comment first"]
    assert m.next_segment() == []
    assert seen == ["comment first", "comment second", "comment 01234567"]  # cut
    assert not m.has_deferred_work
    seen.clear()
    drive(m, b" off\n", seen)
    assert seen == ["comment cut off"]
    seen.clear()
    drive(m, b": x\n: y\ndata: d\n\n", seen)  # comments first: no event before them
    assert seen == ["comment x", "comment y", "event d"]
    seen.clear()
    # A chunk that also discards an event: its comments and events come before its error.
    with pytest.raises(fastsse.EventTooLargeError):
        drive(m, b"data: e\n\n: alive\ndata: 0123456789\n\ndata: f\n\n: end\n", seen)
    assert seen == ["event e", "comment alive", "event f", "comment end"]
    assert m.closed


def test_bom_with_a_comment_at_the_start() -> None:
    # LaunchDarkly's sse-contract-tests, "BOM with comment at start".
    seen: list[str] = []
    m = machine(on_comment=lambda text: seen.append(f"comment {text}"))
    send(m)
    m.response(FakeResponse())
    drive(m, b"\xef\xbb\xbf: hello\ndata: a\n\n", seen)
    assert seen == ["comment hello", "event a"]


def test_a_comment_hook_that_raises_loses_no_event_before_it() -> None:
    delivered: list[str] = []

    def hook(text: str) -> None:
        raise RuntimeError(text)

    m = machine(on_comment=hook)
    send(m)
    m.response(FakeResponse())
    delivered += [event.data for event in m.feed(b"data: a\n\n: boom\ndata: b\n\n")]
    with pytest.raises(RuntimeError, match="boom"):
        m.next_segment()
    assert delivered == ["a"]


def test_raise_deferred_hands_out_the_rest_of_the_chunk_at_once() -> None:
    seen: list[str] = []
    m = machine(on_comment=seen.append)
    send(m)
    m.response(FakeResponse())
    assert [event.data for event in m.feed(b"data: a\n\n: c\ndata: b\n\n")] == ["a"]
    assert [event.data for event in m.raise_deferred()] == ["b"]
    assert seen == ["c"]
    assert not m.has_deferred_work


def test_without_on_comment_the_parser_drops_comments() -> None:
    m = machine()
    send(m)
    m.response(FakeResponse())
    assert [event.data for event in m.feed(b": x\ndata: a\n\n")] == ["a"]
    assert not m.has_deferred_work
    assert m.parser.take_comments() == []


def test_a_connection_that_delivered_events_resets_the_backoff() -> None:
    # Issue 15, defect 1: a server that ends each response cleanly after a few events, with
    # ``retry: 500``, is reconnected to after 0.5 s each time, as a browser does.
    clock = FakeClock()
    faults: list[tuple[fastsse.Fault, float | None]] = []
    m = machine(
        clock=clock,
        retry=Retry(initial=1.0, multiplier=2.0, jitter=False, max_attempts=3),
        on_fault=lambda fault, delay: faults.append((fault, delay)),
    )
    waits = []
    for n in range(5):
        send(m)
        assert m.response(FakeResponse()) is Verdict.STREAM
        assert len(m.feed(f"retry: 500\nid: {n}\ndata: x\n\n".encode())) == 1
        m.ended()
        m.end_response()
        action = m.next_action()
        assert isinstance(action, Wait)
        waits.append(action.seconds)
        clock.now += action.seconds
    assert waits == [0.5] * 5
    assert [(fault.kind, fault.attempt) for fault, _ in faults] == [("closed", 1)] * 5
    # Attempts that deliver nothing grow it, and Fault.attempt counts exactly those.
    for _ in range(2):
        send(m)
        m.failed("refused", ConnectionRefusedError())
        action = m.next_action()
        assert isinstance(action, Wait)
        waits.append(action.seconds)
        clock.now += action.seconds
    assert waits[5:] == [1.0, 2.0]
    assert [fault.attempt for fault, _ in faults[5:]] == [2, 3]
    # An empty connection is no progress either.
    send(m)
    m.response(FakeResponse())
    m.feed(b": only a comment\n")
    m.ended()
    m.end_response()
    with pytest.raises(RetriesExhausted):
        m.next_action()


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b'{"detail": "Not Found"}', ': {"detail": "Not Found"}; check the URL'),
        (b"<!doctype html>\n<html><body>huge</body></html>\n", ": <!doctype html>…; check"),
        (b"\xff\xfeoops\r\nmore", ": \ufffd\ufffdoops…; check"),
        (b"x" * 300, ": " + "x" * 200 + "…; check"),
        (b"", " (empty body); check"),
    ],
)
def test_an_error_shows_its_body_as_text(body: bytes, shown: str) -> None:
    # Issue 15, defect 10: decoded with replacement, the first line, cut; never b'...'.
    m = machine()
    send(m)
    headers = httpx.Headers({"Content-Type": "application/json"})
    assert m.response(FakeResponse(404, "Not Found", headers)) is Verdict.PREVIEW
    with pytest.raises(UnexpectedStatusError) as info:
        m.refused(body)
    assert f"answered 404 Not Found{shown}" in str(info.value)
    assert "b'" not in str(info.value)
    assert info.value.body == body  # the bytes stay on the error


def test_a_retried_status_shows_its_body_as_text(caplog: pytest.LogCaptureFixture) -> None:
    m = machine()
    send(m)
    assert m.response(FakeResponse(503, "Service Unavailable")) is Verdict.PREVIEW
    m.refused(b"<html>\n<h1>busy</h1>")
    m.end_response()
    with caplog.at_level("INFO", logger="fastsse"):
        m.next_action()
    assert "answered 503 Service Unavailable: <html>…; reconnect attempt 1" in caplog.text


def _ended_cleanly(m: StreamMachine, clock: FakeClock, body: bytes) -> None:
    action = m.next_action()
    if isinstance(action, Wait):
        clock.now += action.seconds
    send(m)
    assert m.response(FakeResponse()) is Verdict.STREAM
    m.feed(body)
    m.ended()
    m.end_response()


def test_a_clean_end_logs_info_and_only_repeated_emptiness_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 15, defect 12.
    clock = FakeClock()
    m = machine(clock=clock)
    caplog.set_level("INFO", logger="fastsse")

    def levels() -> list[str]:
        reconnects = [r for r in caplog.records if "reconnect attempt" in r.getMessage()]
        levels = [record.levelname for record in reconnects]
        caplog.clear()
        return levels

    _ended_cleanly(m, clock, b"data: a\n\n")  # events, then a clean end
    m.next_action()
    assert levels() == ["INFO"]
    _ended_cleanly(m, clock, b"data: b\n\n")
    m.next_action()
    assert levels() == ["INFO"]
    _ended_cleanly(m, clock, b": nothing\n")  # the first attempt that delivered nothing
    m.next_action()
    assert levels() == ["INFO"]
    _ended_cleanly(m, clock, b"")  # the second in a row: worth a warning
    m.next_action()
    assert levels() == ["WARNING"]
    action = m.next_action()
    assert isinstance(action, Wait)
    clock.now += action.seconds
    send(m)
    m.failed("broken", ConnectionResetError("reset"))  # every error warns
    m.next_action()
    assert levels() == ["WARNING"]
    _ended_cleanly(m, clock, b"data: c\n\n")
    m.next_action()
    assert levels() == ["INFO"]
    action = m.next_action()
    assert isinstance(action, Wait)
    clock.now += action.seconds
    send(m)
    m.response(FakeResponse(500, "Internal Server Error"))
    m.refused(b"")
    m.end_response()
    m.next_action()
    assert levels() == ["WARNING"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:s3cret@h/feed", "http://user:[secure]@h/feed"),
        ("http://h/f?api_key=K&page=2", "http://h/f?api_key=[secure]&page=2"),
        (
            "http://h/f?access_token=a%2Bb&sig=S&Signature=T&x-auth=U&password=P&key=&q",
            "http://h/f?access_token=[secure]&sig=[secure]&Signature=[secure]"
            "&x-auth=[secure]&password=[secure]&key=&q",
        ),
        ("http://user@h/f?page=2#frag", "http://user@h/f?page=2#frag"),
        ("/relative?token=T", "/relative?token=[secure]"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert fastsse.protocol.redact_url(url) == shown
    assert fastsse.protocol.redact_url(httpx.URL(url)) == fastsse.protocol.redact_url(
        str(httpx.URL(url))
    )


SECRET_URL = "http://user:s3cret@example.test/feed?api_key=SECRETKEY&page=1"


def _secret_free(texts: list[str]) -> None:
    for text in texts:
        assert "s3cret" not in text, text
        assert "SECRETKEY" not in text, text


def test_no_message_of_the_machine_shows_a_secret(caplog: pytest.LogCaptureFixture) -> None:
    # Issue 15, defect 14, every path of the machine: refused, a retried status, a failure
    # whose error quotes the URL, a 4xx, an oversized event, exhaustion.
    caplog.set_level("DEBUG", logger="fastsse")
    clock = FakeClock()
    faults: list[fastsse.Fault] = []
    errors: list[BaseException] = []

    def new() -> StreamMachine:
        return StreamMachine(
            SECRET_URL,
            method="GET",
            headers=[(b"Authorization", b"Bearer s3cret")],
            last_event_id="",
            retry=Retry(initial=1.0, jitter=False, max_attempts=2),
            reconnect=None,
            read_timeout=1.0,
            max_event_size=8,
            on_oversize="error",
            on_fault=lambda fault, _: faults.append(fault),
            clock=clock,
        )

    def advance(m: StreamMachine) -> None:
        try:
            action = m.next_action()
        except fastsse.FastSSEError as error:
            errors.append(error)
            return
        if isinstance(action, Wait):
            clock.now += action.seconds

    m = new()
    response = FakeResponse(url=SECRET_URL)
    send(m)
    m.failed("refused", ConnectionRefusedError("refused"))
    advance(m)
    send(m)
    m.response(dataclasses.replace(response, status_code=500, reason_phrase="Error"))
    m.refused(b"no SECRETKEY for you")
    m.end_response()
    advance(m)
    send(m)
    m.failed("broken", OSError(f"peer reset {SECRET_URL}"))
    advance(m)  # exhausted
    assert isinstance(errors[-1], RetriesExhausted)

    m = new()
    send(m)
    m.response(dataclasses.replace(response, status_code=404, reason_phrase="Not Found"))
    with pytest.raises(UnexpectedStatusError) as info:
        m.refused(b"")
    errors.append(info.value)

    m = new()
    send(m)
    m.response(response)
    m.feed(b"data: 0123456789\n\n")
    with pytest.raises(fastsse.EventTooLargeError) as too_large:
        m.raise_deferred()
    errors.append(too_large.value)

    m = new()
    send(m)
    m.response(
        dataclasses.replace(
            response,
            status_code=307,
            reason_phrase="Temporary Redirect",
            headers=httpx.Headers({"Location": "http://x:s3cret@elsewhere/?token=SECRETKEY"}),
        )
    )
    with pytest.raises(UnexpectedStatusError) as redirect:
        m.refused(b"")
    errors.append(redirect.value)

    assert len(faults) == 5
    _secret_free([r.getMessage() for r in caplog.records])
    _secret_free([fault.message for fault in faults])
    _secret_free([str(error) for error in errors])
    assert "[secure]" in str(errors[0])
    assert "[secure]" in str(errors[1])


def test_an_oversized_event_is_final_and_raised_again() -> None:
    # Issue 15, defect 5: the events before it come first, then the error, then the same error
    # at every later step; never a silent end, never a reconnect.
    m = machine(max_event_size=8)
    send(m)
    m.response(FakeResponse())
    events = m.feed(b"data: a\n\ndata: 0123456789\n\ndata: b\n\n")
    # The parser finishes the chunk: what it completed is delivered before the error.
    assert [event.data for event in events] == ["a", "b"]
    assert m.has_deferred_work
    with pytest.raises(fastsse.EventTooLargeError) as info:
        m.raise_deferred()
    m.end_response()
    assert (m.closed, m.done, m.error) == (True, True, info.value)
    for _ in range(3):
        with pytest.raises(fastsse.EventTooLargeError) as again:
            m.next_action()
        assert again.value is info.value
    assert m.requests == 1
    assert m.stats.oversized == 1


def test_redirects_without_end_fail_with_a_fastsse_error() -> None:
    # Issue 15, defect 8, at the machine: the driver reports a redirect loop (httpx's
    # TooManyRedirects), the stream fails at once, on_fault is told.
    faults: list[tuple[fastsse.Fault, float | None]] = []
    m = machine(on_fault=lambda fault, delay: faults.append((fault, delay)))
    send(m)
    loop = httpx.TooManyRedirects("Exceeded maximum allowed redirects.")
    m.failed("redirect", loop)
    with pytest.raises(UnexpectedStatusError, match="the redirects do not end") as info:
        m.next_action()
    assert isinstance(info.value, fastsse.FastSSEError)
    assert info.value.__cause__ is loop
    assert [(fault.kind, fault.error, delay) for fault, delay in faults] == [
        ("redirect", info.value, None)
    ]
    assert m.requests == 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (httpx.TooManyRedirects("Exceeded maximum allowed redirects."), "redirect"),
        (httpx.DecodingError("bad gzip"), "broken"),
        (httpx.StreamClosed(), "broken"),
        (httpx.InvalidURL("bad"), "invalid_request"),
        (httpx.UnsupportedProtocol("ftp"), "invalid_request"),
        (httpx.LocalProtocolError("bad header"), "invalid_request"),
    ],
)
def test_every_error_of_the_client_library_is_classified(error: Exception, kind: str) -> None:
    # Every error a stream raises is a FastSSEError: none of the client library's leaks.
    from fastsse._io.http import classify

    assert classify(error) == kind


@pytest.mark.parametrize("mid", ["request", "read"])
def test_an_attempt_cancelled_from_outside_is_a_counted_logged_reconnect(
    mid: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 15, defect 7: a cancellation goes through the driver without a word to the machine
    # (only end_response() in a finally, if a response had come); the next action finds out.
    caplog.set_level("INFO", logger="fastsse")
    faults: list[tuple[fastsse.Fault, float | None]] = []
    m = machine(on_fault=lambda fault, delay: faults.append((fault, delay)))
    send(m)
    if mid == "read":
        m.response(FakeResponse())
        m.feed(b"id: 1\ndata: a\n\ndata: par")
        m.end_response()
    action = send(m)  # at once, as before, and resuming
    assert (b"Last-Event-ID", b"1") in action.headers or mid == "request"
    assert m.stats.reconnects == 1
    assert m.stats.errors == 0
    assert [(fault.kind, delay) for fault, delay in faults] == [("cancelled", 0.0)]
    (record,) = [r for r in caplog.records if "cancelled from outside" in r.getMessage()]
    assert record.levelname == "INFO"
    assert "reconnecting now" in record.getMessage()


def test_a_cancelled_post_is_not_sent_again() -> None:
    m = machine(method="POST")
    send(m)
    with pytest.raises(StreamInterruptedError, match="cancelled from outside"):
        m.next_action()
    assert m.requests == 1


class HookError(Exception):
    """Raised by a hook of the caller's."""


def _raise(*args: object) -> None:
    raise HookError(*args)


def _text_response(status: int, reason: str) -> FakeResponse:
    return FakeResponse(status, reason, httpx.Headers({"Content-Type": "text/plain"}))


def _refused(m: StreamMachine, response: FakeResponse) -> None:
    assert m.response(response) is Verdict.PREVIEW
    m.refused(b"body")


def _broke_mid_event(m: StreamMachine) -> None:
    m.response(FakeResponse())
    m.feed(b"data: a\n\ndata: cut")
    m.failed("broken", ConnectionResetError("reset"))
    m.end_response()
    m.next_action()


def _failed_then_decided(m: StreamMachine, kind: Any, error: Exception) -> None:
    m.failed(kind, error)
    m.next_action()


def _comment_hook_raises(m: StreamMachine) -> None:
    m.response(FakeResponse())
    m.feed(b"data: a\n\n: ping\ndata: b\n\n")
    m.next_segment()


#: Every way a stream ends for good: the machine's options, the step that raises, the error.
FINAL: dict[str, tuple[dict[str, Any], Any, type[Exception]]] = {
    "404": ({}, lambda m: _refused(m, _text_response(404, "Not Found")), UnexpectedStatusError),
    "content type": (
        {},
        lambda m: _refused(m, _text_response(200, "OK")),
        fastsse.ContentTypeError,
    ),
    "retries exhausted": (
        {"retry": Retry(max_attempts=0)},
        lambda m: _failed_then_decided(m, "refused", ConnectionRefusedError()),
        RetriesExhausted,
    ),
    "a POST that broke": ({"method": "POST"}, _broke_mid_event, StreamInterruptedError),
    "invalid request": (
        {},
        lambda m: _failed_then_decided(m, "invalid_request", httpx.UnsupportedProtocol("ftp")),
        InvalidRequestError,
    ),
    "on_comment raised": ({"on_comment": _raise}, _comment_hook_raises, HookError),
    "on_connect raised": ({"on_connect": _raise}, lambda m: m.response(FakeResponse()), HookError),
    "on_fault raised": (
        {"on_fault": _raise},
        lambda m: _failed_then_decided(m, "refused", ConnectionRefusedError()),
        HookError,
    ),
    "the driver's step raised": ({}, lambda m: _raise_through(m, HookError("auth")), HookError),
}


def _raise_through(m: StreamMachine, error: Exception) -> None:
    m.raised(error)
    raise error


@pytest.mark.parametrize("case", FINAL)
def test_every_final_error_is_raised_again_by_every_later_action(case: str) -> None:
    # Not only an oversized event's: a status that ends the stream, exhausted retries, a POST
    # that broke, a request that cannot be sent, and what the caller's hooks raise are kept in
    # ``error`` and raised again, so that no driver ends silently after one.
    options, step, expected = FINAL[case]
    m = machine(**options)
    send(m)
    with pytest.raises(expected) as info:
        step(m)
    m.end_response()
    assert (m.done, m.error) == (True, info.value)
    for _ in range(3):
        with pytest.raises(expected) as again:
            m.next_action()
        assert again.value is info.value
    assert m.requests == 1


def test_no_hook_runs_and_no_event_is_handed_out_after_a_hook_closes_the_stream() -> None:
    seen: list[str] = []

    def on_comment(text: str) -> None:
        seen.append(f"comment {text}")
        if text == "close":
            m.close()

    m = machine(on_comment=on_comment)
    send(m)
    m.response(FakeResponse())
    drive(m, b"data: a\n\n: close\n: two\ndata: b\n\n: three\ndata: c\n\n", seen)
    assert seen == ["event a", "comment close"]
    assert not m.has_deferred_work
    assert m.next_action() is STOP


def test_nothing_of_the_chunk_is_handed_out_after_close_between_segments() -> None:
    # close() from another task or thread while the driver delivers a segment: the driver's
    # next next_segment() runs no hook and hands out no event (nor the chunk's error).
    seen: list[str] = []
    m = machine(on_comment=lambda text: seen.append(text), max_event_size=8)
    send(m)
    m.response(FakeResponse())
    events = m.feed(b"data: a\n\n: one\ndata: b\n\n: two\ndata: 0123456789\n\n")
    assert [event.data for event in events] == ["a"]
    assert [event.data for event in m.next_segment()] == ["b"]
    assert seen == ["one"]
    m.close()  # while "b" is being delivered
    assert m.has_deferred_work
    assert m.next_segment() == []
    assert seen == ["one"]
    assert not m.has_deferred_work
    assert m.error is None  # the oversized event after the close is no one's concern
    m.end_response()
    assert m.next_action() is STOP


@pytest.mark.parametrize(
    ("url", "text", "shown"),
    [
        # A short value is hidden in the URL only: the port, the status and the words keep theirs.
        (
            "http://127.0.0.1:8080/x?key=1",
            "GET http://127.0.0.1:8080/x?key=1 answered 401: cut at a read",
            "GET http://127.0.0.1:8080/x?key=[secure] answered 401: cut at a read",
        ),
        (
            "http://h/x?sig=a",
            "error at a read of http://h/x?sig=a",
            "error at a read of http://h/x?sig=[secure]",
        ),
        # A real secret is hidden wherever it stands as a word, in or out of a URL.
        (
            "http://u:s3cret@h/x?api_key=SECRETKEY",
            "Invalid port: 's3cret' (http://u:s3cret@h/x?api_key=SECRETKEY), SECRETKEY again",
            "Invalid port: '[secure]' (http://u:[secure]@h/x?api_key=[secure]), [secure] again",
        ),
    ],
)
def test_redact_hides_secrets_without_mangling_the_message(url: str, text: str, shown: str) -> None:
    assert fastsse.protocol.redact(text, url) == shown
    machine = StreamMachine(url)
    assert machine.redact(text) == shown
