"""Retries before the first byte, as the official SDKs make them: 408, 409, 429, 5xx and
connection failures are asked again (twice by default) after the server's Retry-After /
retry-after-ms or a backoff; never once the answer has begun."""

from __future__ import annotations

import email.utils
import logging
import time
from types import ModuleType

import fastsse
import httpx
import pytest
from fastsse import llm
from fastsse.llm import _retry
from fastsse.testing import Response, SSEServer, abort, delay
from support.llm_cases import CASES, Case, run
from support.streams import closed_port

ERROR = b'{"error": {"message": "busy, try again", "type": "overloaded_error"}}'


def failing(status: int, **headers: str) -> Response:
    return Response(status, ERROR, headers=headers, content_type="application/json")


class Waits:
    """A backoff that records which retries asked it, and waits not at all."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def __call__(self, attempt: int) -> float:
        self.asked.append(attempt)
        return 0.0


@pytest.mark.parametrize(
    ("status", "case_name"),
    [
        (408, "openai_chat"),
        (409, "openai_responses"),
        (429, "openai_chat"),
        (500, "gemini"),
        (502, "openai_responses"),
        (503, "gemini"),
        (504, "anthropic"),
        (529, "anthropic"),
    ],
)
def test_a_retryable_status_is_asked_again_then_streams(
    status: int, case_name: str, lib: ModuleType, kind: str, server: SSEServer
) -> None:
    case = CASES[case_name]
    server.respond(
        failing(status, **{"retry-after-ms": "1"}),
        failing(status, **{"retry-after-ms": "1"}),
        Response(body=[case.body]),
    )
    waits = Waits()
    assert run(lib, kind, "complete", case.fmt, server.url, backoff=waits) == case.text
    assert len(server.requests) == 3
    assert all(request.json() == server.requests[0].json() for request in server.requests)
    assert waits.asked == []  # The server said how long to wait.


def test_without_retry_after_the_backoff_decides(server: SSEServer) -> None:
    case = CASES["anthropic"]
    server.respond(failing(529), failing(529), Response(body=[case.body]))
    waits = Waits()
    assert run(httpx, "sync", "complete", case.fmt, server.url, backoff=waits)
    assert waits.asked == [0, 1]


@pytest.mark.parametrize("value", ["0", "retry-after-ms"])
def test_retry_after_zero_or_ms_replaces_the_backoff(value: str, server: SSEServer) -> None:
    headers = {"retry-after-ms": "1"} if value == "retry-after-ms" else {"Retry-After": value}
    case = CASES["openai_chat"]
    server.respond(failing(429, **headers), Response(body=[case.body]))
    waits = Waits()
    run(httpx, "sync", "complete", case.fmt, server.url, backoff=waits)
    assert waits.asked == []
    assert len(server.requests) == 2


def test_the_servers_wait_is_waited(kind: str, server: SSEServer) -> None:
    case = CASES["openai_chat"]
    server.respond(
        failing(503, **{"retry-after-ms": "150"}),
        failing(503, **{"Retry-After": "0"}),
        Response(body=[case.body]),
    )
    started = time.monotonic()
    run(httpx, kind, "complete", case.fmt, server.url)
    assert 0.15 <= time.monotonic() - started < 2.0
    assert len(server.requests) == 3


def test_retries_run_out_with_the_last_error(
    lib: ModuleType, kind: str, server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.respond(failing(503, **{"retry-after-ms": "1"}))  # the last response repeats
    caplog.set_level(logging.WARNING, "fastsse")
    with pytest.raises(fastsse.LLMError) as caught:
        run(lib, kind, "complete", llm.anthropic, server.url)
    assert caught.value.status_code == 503
    assert caught.value.message == "busy, try again"
    assert len(server.requests) == 1 + llm.DEFAULT_MAX_RETRIES == 3
    assert "answered 503 Service Unavailable; retry 2 of 2 in 0.00 s" in caplog.text


@pytest.mark.parametrize("max_retries", [0, 1, 4])
def test_max_retries(max_retries: int, server: SSEServer) -> None:
    server.respond(failing(500))
    with pytest.raises(fastsse.LLMError):
        run(httpx, "sync", "events", llm.openai_chat, server.url, max_retries=max_retries)
    assert len(server.requests) == 1 + max_retries


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_status_that_asking_again_cannot_fix_is_not_retried(
    status: int, server: SSEServer
) -> None:
    server.respond(failing(status, **{"retry-after-ms": "1"}), Response(body=[b"data: [DONE]\n\n"]))
    with pytest.raises(fastsse.LLMError) as caught:
        run(httpx, "sync", "events", llm.openai_chat, server.url)
    assert caught.value.status_code == status
    assert len(server.requests) == 1


def test_a_redirect_loop_is_not_retried(lib: ModuleType, kind: str, server: SSEServer) -> None:
    # The redirects do not end: asking again loops again (and re-sends the POST each time).
    server.respond(Response(307, b"", headers={"Location": "/v1/loop"}))
    url = server.url + "v1/loop"
    with pytest.raises(fastsse.UnexpectedStatusError, match="the redirects do not end"):
        run(lib, kind, "complete", llm.openai_chat, url, follow_redirects=True, max_retries=0)
    one_attempt = len(server.requests)
    assert one_attempt > 1  # the client followed the redirects until it gave up
    with pytest.raises(fastsse.UnexpectedStatusError, match="the redirects do not end"):
        run(lib, kind, "complete", llm.openai_chat, url, follow_redirects=True)
    assert len(server.requests) == 2 * one_attempt


def test_x_should_retry_overrides_the_status(server: SSEServer) -> None:
    case = CASES["openai_chat"]
    server.respond(failing(503, **{"x-should-retry": "false"}))
    with pytest.raises(fastsse.LLMError):
        run(httpx, "sync", "events", case.fmt, server.url)
    assert len(server.requests) == 1

    server.respond(failing(400, **{"x-should-retry": "true"}), Response(body=[case.body]))
    assert run(httpx, "sync", "complete", case.fmt, server.url) == case.text
    assert len(server.requests) == 3


def test_a_connection_lost_before_the_response_is_retried(
    case: Case, lib: ModuleType, kind: str, server: SSEServer
) -> None:
    server.respond(Response.hang_up(), Response.hang_up(), Response(body=[case.body]))
    waits = Waits()
    assert run(lib, kind, "complete", case.fmt, server.url, backoff=waits) == case.text
    assert len(server.requests) == 3
    assert waits.asked == [0, 1]


def test_an_answer_that_began_is_never_asked_again(
    case: Case, lib: ModuleType, kind: str, server: SSEServer
) -> None:
    half = case.body[: len(case.body) // 2]
    server.respond(Response(body=[half, delay(0.05), abort()]), Response(body=[case.body]))
    with pytest.raises(fastsse.StreamInterruptedError):
        run(lib, kind, "complete", case.fmt, server.url, max_retries=5)
    assert len(server.requests) == 1


def test_an_error_event_in_a_200_stream_is_not_retried(server: SSEServer) -> None:
    server.respond(
        Response(body=[b'data: {"error": {"message": "overloaded"}}\n\n']),
        Response(body=[CASES["openai_chat"].body]),
    )
    with pytest.raises(fastsse.LLMError, match="overloaded"):
        run(httpx, "sync", "complete", llm.openai_chat, server.url, max_retries=5)
    assert len(server.requests) == 1


# -- the decisions, without a server ------------------------------------------------------------


def test_server_delay_reads_both_headers() -> None:
    delay = _retry.server_delay
    assert delay({"retry-after-ms": "1500"}) == 1.5
    assert delay({"retry-after": "2"}) == 2.0
    assert delay({"retry-after": "0.25"}) == 0.25
    assert delay({"retry-after-ms": "10", "retry-after": "30"}) == 0.01  # ms wins, as the SDKs
    assert delay({"retry-after-ms": "soon", "retry-after": "3"}) == 3.0
    assert delay({"retry-after": "120"}) is None  # past 60 s the backoff decides
    assert delay({"retry-after": "-1"}) is None
    assert delay({"retry-after": "whenever"}) is None
    assert delay({}) is None


def test_server_delay_reads_an_http_date() -> None:
    now = 1_767_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert _retry.server_delay({"retry-after": date}, now=now) == 7.0
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert _retry.server_delay({"retry-after": past}, now=now) == 0.0


def test_the_sdk_backoff() -> None:
    for attempt, full in [(0, 0.5), (1, 1.0), (2, 2.0), (4, 8.0), (50, 8.0)]:
        for _ in range(20):
            assert 0.75 * full <= llm.sdk_backoff(attempt) <= full


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_max_retries_must_be_a_count(bad: object) -> None:
    with httpx.Client() as client, pytest.raises(ValueError, match="max_retries"):
        llm.openai_chat.stream(client, "http://127.0.0.1:9/", max_retries=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("where", ["500 then 404", "refused port"])
def test_a_key_in_the_url_is_never_in_a_log_or_an_error(
    where: str, lib: ModuleType, kind: str, server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Gemini's API takes the key in the URL (?key=...): the call's errors, and the retry
    # warnings, show it as [secure], as every stream's messages do.
    caplog.set_level(logging.DEBUG, "fastsse")
    if where == "500 then 404":
        server.respond(failing(500), failing(404))
        base = server.url
    else:
        base = f"http://127.0.0.1:{closed_port()}/"
    url = f"{base}v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key=SECRET"
    with pytest.raises(fastsse.FastSSEError) as caught:
        run(lib, kind, "complete", llm.gemini, url, max_retries=1)
    shown = [str(caught.value), repr(caught.value), caplog.text]
    assert "retry 1 of 1" in caplog.text  # The retry was logged, and with the URL:
    assert "key=[secure]" in caplog.text
    assert "key=[secure]" in str(caught.value)
    assert not [text for text in shown if "SECRET" in text], shown
    if where == "500 then 404":
        assert isinstance(caught.value, fastsse.LLMError)
        assert caught.value.status_code == 404
