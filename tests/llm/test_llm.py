"""fastsse.llm against SSEServer replaying each provider's documented wire format
(tests/fixtures), on httpx and httpx2 clients, sync and async."""

from __future__ import annotations

import asyncio
import gzip
import json
from types import ModuleType
from typing import Any

import fastsse
import httpx
import pytest
from fastsse import _json, llm
from fastsse.testing import Response, SSEServer, abort, delay, split, stall
from support.llm_cases import BODY, CASES, TIMEOUT, Case, fixture, run, wire_events

# -- whole streams ---------------------------------------------------------------------------


def test_events_are_the_decoded_json_without_end_or_ping(
    case: Case, lib: ModuleType, kind: str, server: SSEServer
) -> None:
    server.respond(Response(body=[case.body]))
    assert run(lib, kind, "events", case.fmt, server.url) == case.expected
    (request,) = server.requests
    assert request.method == "POST"
    assert request.json() == BODY
    assert request.header("authorization") == "Bearer sk-test"
    assert request.header("accept") == "text/event-stream"


def test_text_deltas_and_the_whole_text(
    case: Case, lib: ModuleType, kind: str, server: SSEServer
) -> None:
    server.respond(Response(body=[case.body]))
    deltas = run(lib, kind, "text", case.fmt, server.url)
    assert "".join(deltas) == case.text
    assert len(deltas) == case.deltas
    assert all(deltas)


def test_complete_calls_back_per_token_and_once_at_the_end(
    case: Case, lib: ModuleType, kind: str, server: SSEServer
) -> None:
    server.respond(Response(body=[case.body]))
    tokens: list[str] = []
    completed: list[str] = []
    text = run(
        lib,
        kind,
        "complete",
        case.fmt,
        server.url,
        on_token=tokens.append,
        on_complete=completed.append,
    )
    assert text == case.text
    assert "".join(tokens) == case.text
    assert completed == [case.text]


def test_async_complete_awaits_coroutine_callbacks(case: Case, server: SSEServer) -> None:
    server.respond(Response(body=[case.body]))
    tokens: list[str] = []
    completed: list[str] = []

    async def on_token(token: str) -> None:
        await asyncio.sleep(0)
        tokens.append(token)

    async def on_complete(text: str) -> None:
        completed.append(text)

    async def main() -> str:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            return await case.fmt.acomplete(
                client, server.url, json=BODY, on_token=on_token, on_complete=on_complete
            )

    assert asyncio.run(main()) == case.text
    assert "".join(tokens) == case.text
    assert completed == [case.text]


@pytest.mark.parametrize("step", [1, 7, 61])
def test_json_split_across_http_chunks(case: Case, kind: str, server: SSEServer, step: int) -> None:
    body = case.body
    server.respond(Response(body=split(body, at=range(step, len(body), step))))
    assert run(httpx, kind, "events", case.fmt, server.url) == case.expected


def test_a_gzip_encoded_stream_is_decoded(
    case: Case, lib: ModuleType, kind: str, server: SSEServer
) -> None:
    body = gzip.compress(case.body)
    server.respond(
        Response(body=split(body, at=[len(body) // 2]), headers={"Content-Encoding": "gzip"})
    )
    assert run(lib, kind, "events", case.fmt, server.url) == case.expected


@pytest.mark.parametrize(
    "marked", [name for name, case in CASES.items() if case.fmt.stops_at_end]
)  # Gemini's answer ends with its body, not at a marker
def test_the_end_marker_ends_the_stream_even_if_the_server_goes_on(
    marked: str, kind: str, server: SSEServer
) -> None:
    # A connection left open after [DONE] / response.completed / message_stop: the helper
    # returns at once (bounded by the client's 5 s timeout, never reached).
    case = CASES[marked]
    trailer = b'data: {"after": "the end"}\n\n'
    server.respond(Response(body=[case.body, trailer, stall()]))
    assert "".join(run(httpx, kind, "text", case.fmt, server.url)) == case.text
    server.wait_for_idle()


def test_the_callers_keywords_reach_client_stream(lib: ModuleType, server: SSEServer) -> None:
    server.respond(Response(body=[CASES["openai_chat"].body]))
    text = run(
        lib,
        "sync",
        "complete",
        llm.openai_chat,
        server.url_for("/v1/chat/completions"),
        params={"api-version": "2024-10-21"},
        headers=[("api-key", "k1"), ("Accept", "text/event-stream; q=1")],
        timeout=lib.Timeout(TIMEOUT),
    )
    assert text == CASES["openai_chat"].text
    (request,) = server.requests
    assert (request.path, request.query) == ("/v1/chat/completions", "api-version=2024-10-21")
    assert request.header("api-key") == "k1"
    assert request.header("accept") == "text/event-stream; q=1"


# -- what must never pass for an answer ------------------------------------------------------


def cut_before_end(case: Case) -> bytes:
    events = case.body.split(case.sep)
    return case.sep.join(events[:-2]) + case.sep  # the end marker (and the empty tail) gone


def test_a_stream_ending_before_its_end_marker_raises(
    case: Case, lib: ModuleType, kind: str, server: SSEServer
) -> None:
    server.respond(Response(body=[cut_before_end(case)]))
    completed: list[str] = []
    with pytest.raises(fastsse.StreamInterruptedError, match="incomplete") as caught:
        run(lib, kind, "complete", case.fmt, server.url, on_complete=completed.append)
    assert case.fmt.end_marker in str(caught.value)
    assert completed == []
    assert len(server.requests) == 1  # never re-sent


def test_a_broken_connection_raises_and_is_not_retried(
    case: Case, lib: ModuleType, kind: str, server: SSEServer
) -> None:
    half = case.body[: len(case.body) // 2]
    server.respond(Response(body=[half, delay(0.05), abort()]), Response(body=[case.body]))
    with pytest.raises(fastsse.StreamInterruptedError, match="broke") as caught:
        run(lib, kind, "complete", case.fmt, server.url)
    assert isinstance(caught.value.__cause__, lib.TransportError)
    assert len(server.requests) == 1


def test_the_clients_read_timeout_ends_a_silent_stream(kind: str, server: SSEServer) -> None:
    case = CASES["anthropic"]
    server.respond(Response(body=[cut_before_end(case), stall()]))
    with pytest.raises(fastsse.StreamInterruptedError) as caught:
        run(httpx, kind, "complete", case.fmt, server.url, timeout=0.2)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


@pytest.mark.parametrize(
    ("fmt", "name", "message", "error_type"),
    [
        (
            llm.openai_chat,
            "openai_chat_error.sse",
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
        ),
        (
            llm.openai_responses,
            "openai_responses_error.sse",
            "The server had an error while processing your request.",
            None,
        ),
        (
            llm.openai_responses,
            "openai_responses_failed.sse",
            "The model failed to generate a response.",
            None,
        ),
        (llm.anthropic, "anthropic_error.sse", "Overloaded", "overloaded_error"),
        (
            llm.gemini,
            "gemini_error.sse",
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
            "INTERNAL",
        ),
    ],
)
def test_an_error_mid_stream_raises_with_the_servers_message(
    lib: ModuleType,
    kind: str,
    server: SSEServer,
    fmt: llm.StreamFormat,
    name: str,
    message: str,
    error_type: str | None,
) -> None:
    body = fixture(name)
    server.respond(Response(body=split(body, at=range(50, len(body), 50))))
    tokens: list[str] = []
    with pytest.raises(fastsse.LLMError) as caught:
        run(lib, kind, "complete", fmt, server.url, on_token=tokens.append)
    error = caught.value
    assert error.message == message
    assert message in str(error)
    assert error.type == error_type
    assert error.status_code is None  # sent inside a 200 stream
    last_data = wire_events(body)[-1][1]
    assert error.body == last_data
    assert error.error == json.loads(last_data)
    assert tokens  # the deltas before the error were delivered, then the error


def test_responses_error_event_carries_its_code(server: SSEServer) -> None:
    server.respond(Response(body=[fixture("openai_responses_error.sse")]))
    with pytest.raises(fastsse.LLMError) as caught:
        run(httpx, "sync", "events", llm.openai_responses, server.url)
    assert caught.value.code == "server_error"


@pytest.mark.parametrize(
    ("fmt", "name", "status", "message", "error_type", "code"),
    [
        (
            llm.openai_chat,
            "openai_error_401.json",
            401,
            "Incorrect API key provided: sk-test. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
        (llm.anthropic, "anthropic_error_529.json", 529, "Overloaded", "overloaded_error", None),
        (
            llm.gemini,
            "gemini_error_400.json",
            400,
            "API key not valid. Please pass a valid API key.",
            "INVALID_ARGUMENT",
            "400",
        ),
    ],
)
def test_an_error_status_raises_with_status_type_and_body(
    lib: ModuleType,
    kind: str,
    server: SSEServer,
    fmt: llm.StreamFormat,
    name: str,
    status: int,
    message: str,
    error_type: str,
    code: str | None,
) -> None:
    body = fixture(name)
    server.respond(Response(status, body, content_type="application/json"))
    with pytest.raises(fastsse.LLMError) as caught:
        run(lib, kind, "events", fmt, server.url, max_retries=0)
    error = caught.value
    assert (error.status_code, error.message, error.type, error.code) == (
        status,
        message,
        error_type,
        code,
    )
    assert error.body == body.decode()
    assert f"answered {status}" in str(error)
    assert len(server.requests) == 1


def test_an_error_status_without_json_keeps_the_text(server: SSEServer) -> None:
    server.respond(Response(502, b"<html>Bad Gateway</html>", content_type="text/html"))
    with pytest.raises(fastsse.LLMError) as caught:
        run(httpx, "sync", "events", llm.openai_chat, server.url)
    assert caught.value.status_code == 502
    assert caught.value.message == "<html>Bad Gateway</html>"
    assert caught.value.type is None


def test_a_json_answer_instead_of_a_stream_says_why(kind: str, server: SSEServer) -> None:
    server.respond(Response.json({"id": "chatcmpl-1", "object": "chat.completion"}))
    with pytest.raises(fastsse.ContentTypeError, match='"stream": true'):
        run(httpx, kind, "events", llm.openai_chat, server.url)


def test_gemini_without_alt_sse_says_so(server: SSEServer) -> None:
    # Without ?alt=sse, streamGenerateContent answers a JSON array: the request lacks alt=sse,
    # there is no "stream": true to set in Gemini's body.
    server.respond(Response.json([{"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}]))
    with pytest.raises(fastsse.ContentTypeError, match=r"is alt=sse in the URL") as caught:
        run(httpx, "sync", "events", llm.gemini, server.url)
    assert '"stream": true' not in str(caught.value)


def test_invalid_json_in_an_event_is_a_clear_error(case: Case, server: SSEServer) -> None:
    body = case.body.replace(case.sep, case.sep + b"data: {not json" + case.sep, 1)
    server.respond(Response(body=[body]))
    with pytest.raises(fastsse.LLMError, match="event 2 is not valid JSON") as caught:
        run(httpx, "sync", "events", case.fmt, server.url)
    assert caught.value.body == "{not json"


def test_empty_and_meta_only_events_never_reach_json_decoding(
    case: Case, kind: str, server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[Any] = []
    real_loads = _json.loads

    def counting_loads(data: str | bytes) -> Any:
        decoded.append(data)
        return real_loads(data)

    monkeypatch.setattr(_json, "loads", counting_loads)
    noise = b": keep-alive\n\ndata:\n\ndata: \n\nretry: 3000\n\nid: 42\n\nevent: ping\n\n"
    events = case.body.split(case.sep)
    body = case.sep.join([events[0], noise.rstrip(b"\n"), *events[1:]])
    server.respond(Response(body=[body]))
    assert run(httpx, kind, "events", case.fmt, server.url) == case.expected
    # Only the events that are the answer were decoded: no empty data, no [DONE], no ping.
    assert len(decoded) == len(case.expected)


def test_orjson_decodes() -> None:
    import orjson  # in the dev extra

    assert _json.loads is orjson.loads


def test_a_large_error_body_is_read_only_in_part(kind: str, server: SSEServer) -> None:
    server.respond(Response(500, b"x" * (1 << 20), content_type="text/plain"))
    with pytest.raises(fastsse.LLMError) as caught:
        run(httpx, kind, "events", llm.openai_chat, server.url)
    assert caught.value.status_code == 500
    assert 0 < len(caught.value.body) <= 128 * 1024


# -- OpenAI-compatible servers' error shapes ---------------------------------------------------

VLLM_ERROR = (
    b'{"object": "error", "message": "This model\'s maximum context length is 4096 tokens.", '
    b'"type": "BadRequestError", "param": null, "code": 400}'
)


@pytest.mark.parametrize(
    ("error", "message", "error_type", "code"),
    [
        (
            VLLM_ERROR,
            "This model's maximum context length is 4096 tokens.",
            "BadRequestError",
            "400",
        ),
        (b'{"error": "Internal server error"}', "Internal server error", None, None),
    ],
    ids=["vllm-object-error", "error-string"],
)
def test_openai_compatible_error_shapes_in_a_200_stream(
    lib: ModuleType,
    kind: str,
    server: SSEServer,
    error: bytes,
    message: str,
    error_type: str | None,
    code: str | None,
) -> None:
    first = CASES["openai_chat"].body.split(b"\n\n")[1] + b"\n\n"  # one token, then the error
    server.respond(Response(body=[first, b"data: " + error + b"\n\n", b"data: [DONE]\n\n"]))
    tokens: list[str] = []
    with pytest.raises(fastsse.LLMError) as caught:
        run(lib, kind, "complete", llm.openai_chat, server.url, on_token=tokens.append)
    assert caught.value.message == message
    assert message in str(caught.value)
    assert (caught.value.type, caught.value.code) == (error_type, code)
    assert caught.value.status_code is None
    assert tokens == ["Hello"]


def test_a_vllm_error_status_body_gives_its_message(server: SSEServer) -> None:
    server.respond(Response(400, VLLM_ERROR, content_type="application/json"))
    with pytest.raises(fastsse.LLMError) as caught:
        run(httpx, "sync", "events", llm.openai_chat, server.url)
    assert caught.value.status_code == 400
    assert caught.value.message == "This model's maximum context length is 4096 tokens."
    assert caught.value.type == "BadRequestError"
