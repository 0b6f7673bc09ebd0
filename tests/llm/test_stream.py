"""``fmt.stream()`` / ``astream()``: the response before the first token, the events or text,
then the whole answer as a typed result (text, finish reason, usage, tool calls, choices); and
the call driven by the protocol core, its failures before any response all FastSSEErrors."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from types import ModuleType
from typing import Any

import fastsse
import httpx
import pytest
from fastsse import llm, protocol
from fastsse.testing import Response, SSEServer, stall
from support.llm_cases import BODY, CASES, TIMEOUT, Case, collect, fixture, no_wait, run

# -- the response, the events, the result ------------------------------------------------------


def test_the_response_is_there_before_the_first_token(
    case: Case, lib: ModuleType, kind: str, server: SSEServer
) -> None:
    # The server sends its headers, then nothing: entering the block must not wait for a token.
    headers = {"x-request-id": "req_8f3c", "x-ratelimit-remaining-tokens": "149984"}
    server.respond(Response(headers=headers, body=[stall()]))

    def check(response: Any) -> None:
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "req_8f3c"
        assert response.headers["x-ratelimit-remaining-tokens"] == "149984"

    if kind == "sync":
        with (
            lib.Client(timeout=TIMEOUT) as client,
            case.fmt.stream(client, server.url, json=BODY) as s,
        ):
            check(s.response)
            with pytest.raises(RuntimeError, match="not ended"):
                s.result  # noqa: B018
    else:

        async def main() -> None:
            async with (
                lib.AsyncClient(timeout=TIMEOUT) as client,
                case.fmt.astream(client, server.url, json=BODY) as s,
            ):
                check(s.response)
                with pytest.raises(RuntimeError, match="not ended"):
                    s.result  # noqa: B018

        asyncio.run(main())
    server.wait_for_idle()  # Leaving the block closed the connection.


def test_the_result_of_each_format(
    case: Case, lib: ModuleType, kind: str, server: SSEServer
) -> None:
    server.respond(Response(body=[case.body]))
    seen = collect(lib, kind, case.fmt, server.url)
    assert seen.status == 200
    assert "".join(seen.deltas) == case.text
    result = seen.result
    assert isinstance(result, llm.Result)
    assert result.text == case.text
    assert result.finish_reason == case.finish_reason
    assert result.usage is not None
    usage = (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens)
    assert usage == case.usage
    assert (result.id, result.model) == (case.id, case.model)
    assert result.tool_calls == ()
    assert result.choices == (llm.Choice(0, case.text, case.finish_reason),)


def test_events_and_text_read_one_stream_and_finish_reads_the_rest(
    case: Case, server: SSEServer
) -> None:
    server.respond(Response(body=[case.body]))
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        case.fmt.stream(client, server.url, json=BODY) as s,
    ):
        first = next(iter(s.events()))
        assert first == case.expected[0]
        with pytest.raises(RuntimeError):
            s.result  # noqa: B018
        result = s.finish()
        assert list(s.text()) == []  # Nothing left.
    assert result.text == case.text
    assert s.result is result


def test_a_failed_stream_raises_its_error_again(
    lib: ModuleType, kind: str, server: SSEServer
) -> None:
    # An error caught in the block: reading again, finish() and result never pass for an end.
    first = CASES["openai_chat"].body.split(b"\n\n")[1] + b"\n\n"
    server.respond(Response(body=[first, b'data: {"error": {"message": "overloaded"}}\n\n']))
    again: list[BaseException] = []
    if kind == "sync":
        with lib.Client(timeout=TIMEOUT) as client, llm.openai_chat.stream(client, server.url) as s:
            with pytest.raises(fastsse.LLMError) as caught:
                list(s.text())
            for read in (lambda: list(s.text()), lambda: list(s.events()), s.finish):
                with pytest.raises(fastsse.LLMError) as raised:
                    read()
                again.append(raised.value)
    else:

        async def main() -> Any:
            async with (
                lib.AsyncClient(timeout=TIMEOUT) as client,
                llm.openai_chat.astream(client, server.url) as s,
            ):
                with pytest.raises(fastsse.LLMError) as caught:
                    [t async for t in s.text()]
                for read in (
                    lambda: _alist(s.text()),
                    lambda: _alist(s.events()),
                    s.finish,
                ):
                    with pytest.raises(fastsse.LLMError) as raised:
                        await read()
                    again.append(raised.value)
            return s, caught

        s, caught = asyncio.run(main())
    with pytest.raises(fastsse.LLMError) as raised:
        s.result  # noqa: B018
    again.append(raised.value)
    assert caught.value.message == "overloaded"
    assert len(again) == 4
    assert all(error is caught.value for error in again)
    assert len(server.requests) == 1


async def _alist(values: Any) -> list[Any]:
    return [value async for value in values]


def test_a_stream_closed_before_its_end_is_never_read_as_ended(
    lib: ModuleType, kind: str, server: SSEServer
) -> None:
    case = CASES["anthropic"]
    server.respond(Response(body=[case.body]))
    if kind == "sync":
        with lib.Client(timeout=TIMEOUT) as client:
            with case.fmt.stream(client, server.url) as s:
                next(iter(s.text()))
            with pytest.raises(RuntimeError, match="closed before its end"):
                list(s.text())
            with pytest.raises(RuntimeError, match="closed before its end"):
                s.finish()
    else:

        async def main() -> Any:
            async with lib.AsyncClient(timeout=TIMEOUT) as client:
                async with case.fmt.astream(client, server.url) as s:
                    await s.text().__anext__()
                with pytest.raises(RuntimeError, match="closed before its end"):
                    [t async for t in s.text()]
                with pytest.raises(RuntimeError, match="closed before its end"):
                    await s.finish()
            return s

        s = asyncio.run(main())
    with pytest.raises(RuntimeError, match="closed before its end"):
        s.result  # noqa: B018


def test_a_stream_is_entered_once(lib: ModuleType, kind: str, server: SSEServer) -> None:
    case = CASES["openai_chat"]
    server.respond(Response(body=[case.body]))
    if kind == "sync":
        with lib.Client(timeout=TIMEOUT) as client:
            with case.fmt.stream(client, server.url) as s:
                assert s.finish().text == case.text
            with pytest.raises(RuntimeError, match="entered once"), s:
                pass
    else:

        async def main() -> None:
            async with lib.AsyncClient(timeout=TIMEOUT) as client:
                async with case.fmt.astream(client, server.url) as s:
                    assert (await s.finish()).text == case.text
                with pytest.raises(RuntimeError, match="entered once"):
                    async with s:
                        pass

        asyncio.run(main())
    assert len(server.requests) == 1  # The answer was never asked for twice.


def _until_reading(s: Any) -> bool:
    """Waits (bounded) until another thread reads the stream's body, blocked on the socket."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if s._pairs is not None and s._pairs.gi_running:
            return True
        time.sleep(0.005)
    return False


def test_close_from_another_thread_or_task_ends_a_read_at_once(
    lib: ModuleType, kind: str, server: SSEServer
) -> None:
    # A "stop" button: close() while the body is read elsewhere wakes that read at once (not
    # after the read timeout), which raises: never a truncated answer that looks whole.
    first = CASES["openai_chat"].body.split(b"\n\n")[1] + b"\n\n"
    server.respond(Response(body=[first, stall()]))
    started = time.monotonic()
    if kind == "sync":
        with lib.Client(timeout=TIMEOUT) as client, llm.openai_chat.stream(client, server.url) as s:
            tokens = s.text()
            assert next(tokens) == "Hello"
            closer = threading.Thread(target=lambda: _until_reading(s) and s.close())
            closer.start()
            with pytest.raises(fastsse.StreamInterruptedError, match="was closed before"):
                next(tokens)
            closer.join(TIMEOUT)
            with pytest.raises(fastsse.StreamInterruptedError, match="was closed before"):
                s.finish()
    else:

        async def main() -> None:
            async with (
                lib.AsyncClient(timeout=TIMEOUT) as client,
                llm.openai_chat.astream(client, server.url) as s,
            ):
                tokens = s.text()
                assert await tokens.__anext__() == "Hello"

                async def stop() -> None:
                    for _ in range(int(TIMEOUT / 0.005)):
                        if s._pairs is not None and s._pairs.ag_running:  # type: ignore[attr-defined]
                            break
                        await asyncio.sleep(0.005)
                    await s.aclose()

                stopper = asyncio.ensure_future(stop())
                with pytest.raises(fastsse.StreamInterruptedError, match="was closed before"):
                    await tokens.__anext__()
                await stopper

        asyncio.run(main())
    assert time.monotonic() - started < TIMEOUT / 2  # Not woken by the read timeout.
    server.wait_for_idle()


def test_a_stream_closed_between_reads_ends_no_loop_silently(server: SSEServer) -> None:
    server.respond(Response(body=[CASES["openai_chat"].body]))
    with httpx.Client(timeout=TIMEOUT) as client, llm.openai_chat.stream(client, server.url) as s:
        tokens: list[str] = []

        def read_and_close() -> None:
            for token in s.text():
                tokens.append(token)
                s.close()  # As another thread might, between two tokens.

        with pytest.raises(RuntimeError, match="closed before its end"):
            read_and_close()
    assert tokens == ["Hello"]


def test_the_response_needs_the_with_block(server: SSEServer) -> None:
    with httpx.Client() as client:
        s = llm.openai_chat.stream(client, server.url, json=BODY)
        with pytest.raises(RuntimeError, match="with block"):
            s.response  # noqa: B018
    assert server.requests == []


def test_a_client_of_the_other_flavour_is_refused_clearly() -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as client:
            with pytest.raises(TypeError, match=r"httpx or httpx2 Client.*astream"):
                llm.openai_chat.stream(client, "http://127.0.0.1:9/")

    asyncio.run(main())
    with httpx.Client() as client, pytest.raises(TypeError, match="AsyncClient"):
        llm.anthropic.astream(client, "http://127.0.0.1:9/")


# -- tool calls and choices --------------------------------------------------------------------

TOOLS = {
    "openai_chat": (
        llm.openai_chat,
        "openai_chat_tools.sse",
        "",
        "tool_calls",
        [
            (0, "call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather", {"location": "Paris, France"}),
            (1, "call_ABtbVdqHHaOYpEEUKp9QI2vO", "get_time", {"timezone": "Europe/Paris"}),
        ],
        None,
    ),
    "openai_responses": (
        llm.openai_responses,
        "openai_responses_function_call.sse",
        "",
        "completed",
        [
            (
                0,
                "call_unLAR8MvFNptuiZK6K6HCy5k",
                "get_current_weather",
                {"location": "Boston, MA", "unit": "celsius"},
            )
        ],
        (291, 23, 314),
    ),
    "anthropic": (
        llm.anthropic,
        "anthropic_tool_use.sse",
        "Okay, let's check the weather for San Francisco, CA:",
        "tool_use",
        [
            (
                1,
                "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "get_weather",
                {"location": "San Francisco, CA", "unit": "fahrenheit"},
            )
        ],
        (472, 89, 561),
    ),
    # Thinking, a server tool (web search: run by Anthropic, not a call for the caller) and its
    # result, text with a citation, then the caller's tool.
    "anthropic_thinking_server_tool": (
        llm.anthropic,
        "anthropic_thinking_server_tool.sse",
        "It is mild in Paris today. Let me get the details.",
        "tool_use",
        [(4, "toolu_01A09q90qw90lq917835lq9", "get_weather", {"location": "Paris, France"})],
        (10682, 510, 11192),
    ),
    "gemini": (
        llm.gemini,
        "gemini_function_call.sse",
        "",
        "STOP",
        [(0, None, "get_weather", {"location": "Paris, France", "unit": "celsius"})],
        (61, 8, 69),
    ),
}


@pytest.mark.parametrize("name", list(TOOLS))
def test_tool_calls_by_index_with_their_arguments_joined_and_parsed(
    name: str, lib: ModuleType, kind: str, server: SSEServer
) -> None:
    fmt, fixture_name, text, finish_reason, calls, usage = TOOLS[name]
    server.respond(Response(body=[fixture(fixture_name)]))
    result = collect(lib, kind, fmt, server.url).result
    assert result.text == text
    assert result.finish_reason == finish_reason
    got = [(call.index, call.id, call.name, call.parsed) for call in result.tool_calls]
    assert got == calls
    assert result.choices[0].tool_calls == result.tool_calls
    if usage is not None:
        assert result.usage is not None
        assert (result.usage.input_tokens, result.usage.output_tokens) == usage[:2]
        assert result.usage.total_tokens == usage[2]


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return b"data: " + json.dumps({"id": "chatcmpl-1", "choices": [choice]}).encode() + b"\n\n"


def _ollama(index: int | None, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    call: dict[str, Any] = {"id": call_id, "type": "function"}
    call["function"] = {"name": name, "arguments": arguments}
    if index is not None:
        call["index"] = index
    return call


@pytest.mark.parametrize(
    "index",
    [None, 0],
    ids=["no-index", "index-always-0"],  # ollama/ollama#7881, then #15457
)
def test_tool_calls_of_servers_that_do_not_count_them(index: int | None, server: SSEServer) -> None:
    # Each call whole, with its own id, the index missing or always 0: two calls, not one.
    body = [
        _chunk(
            {"role": "assistant", "tool_calls": [_ollama(index, "call_a", "write", '{"f": 1}')]}
        ),
        _chunk({"tool_calls": [_ollama(index, "call_b", "write", '{"f": 2}')]}),
        _chunk({}, "tool_calls"),
        b"data: [DONE]\n\n",
    ]
    # And both in one chunk.
    both = [_ollama(index, "call_c", "read", "{}"), _ollama(index, "call_d", "read", '{"x": [')]
    pieces = [
        _chunk({"tool_calls": both}),
        _chunk({"tool_calls": [{"function": {"arguments": "1]}"}}]}),
    ]
    if index is not None:
        pieces[1] = pieces[1].replace(b'{"function"', b'{"index": 0, "function"')
    server.respond(Response(body=body), Response(body=[*pieces, *body[2:]]))
    result = collect(httpx, "sync", llm.openai_chat, server.url).result
    got = [(call.index, call.id, call.parsed) for call in result.tool_calls]
    assert got == [(0, "call_a", {"f": 1}), (1, "call_b", {"f": 2})]
    result = collect(httpx, "sync", llm.openai_chat, server.url).result
    got = [(call.index, call.id, call.parsed) for call in result.tool_calls]
    assert got == [(0, "call_c", {}), (1, "call_d", {"x": [1]})]


def _anthropic(*events: dict[str, Any]) -> bytes:
    start = {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 25}}}
    ends = [{"type": "message_stop"}]
    return b"".join(
        f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in [start, *events, *ends]
    )


def test_anthropic_usage_counts_left_null_keep_the_earlier_ones(server: SSEServer) -> None:
    # message_delta's usage may carry null counts (the SDK's MessageDeltaUsage: Optional[int]);
    # the SDK keeps the counts it had: so does the result.
    usage = {"input_tokens": None, "cache_read_input_tokens": None, "output_tokens": 12}
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": usage}
    server.respond(Response(body=[_anthropic(delta)]))
    result = collect(httpx, "sync", llm.anthropic, server.url).result
    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.output_tokens) == (25, 12)
    assert result.usage.total_tokens == 37


def test_anthropic_tool_input_given_whole_at_its_start(server: SSEServer) -> None:
    # A tool_use block whose input comes whole in content_block_start and no input_json_delta
    # follows (the SDK's accumulator keeps that input); deltas, when they come, replace it.
    whole = {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {"tz": "UTC"}}
    streamed = {"type": "tool_use", "id": "toolu_2", "name": "add", "input": {}}
    piece = {"type": "input_json_delta", "partial_json": '{"a": 1}'}
    body = _anthropic(
        {"type": "content_block_start", "index": 0, "content_block": whole},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": streamed},
        {"type": "content_block_delta", "index": 1, "delta": piece},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {}},
    )
    server.respond(Response(body=[body]))
    result = collect(httpx, "sync", llm.anthropic, server.url).result
    got = [(call.index, call.id, call.parsed) for call in result.tool_calls]
    assert got == [(0, "toolu_1", {"tz": "UTC"}), (1, "toolu_2", {"a": 1})]


def test_a_tool_call_only_answer_completes_to_empty_text(server: SSEServer) -> None:
    server.respond(Response(body=[fixture("openai_chat_tools.sse")]))
    assert run(httpx, "sync", "complete", llm.openai_chat, server.url) == ""


def test_tool_call_arguments_cut_short_are_an_error_when_parsed() -> None:
    call = llm.ToolCall(0, "call_1", "get_weather", '{"location": "Par')
    with pytest.raises(fastsse.LLMError, match=r"tool call 0 \(get_weather\).*not valid JSON"):
        call.parsed  # noqa: B018
    assert llm.ToolCall(0, None, "now", "").parsed == {}


def test_every_choice_by_index_when_n_is_2(lib: ModuleType, kind: str, server: SSEServer) -> None:
    server.respond(Response(body=[fixture("openai_chat_n2.sse")]))
    seen = collect(lib, kind, llm.openai_chat, server.url)
    assert seen.result.choices == (
        llm.Choice(0, "Yes, gladly.", "stop"),
        llm.Choice(1, "Sure! Here you go.", "length"),
    )
    assert seen.result.text == "Yes, gladly."
    assert "".join(seen.deltas) == "Yes, gladly."  # text() is the first choice's
    assert seen.result.usage is None  # Sent only with stream_options.include_usage.


def test_gemini_candidates_by_index(server: SSEServer) -> None:
    def chunk(candidates: list[dict[str, Any]]) -> bytes:
        import json

        return b"data: " + json.dumps({"candidates": candidates}).encode() + b"\r\n\r\n"

    def part(index: int, text: str, finish: str | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"index": index, "content": {"parts": [{"text": text}]}}
        if finish:
            candidate["finishReason"] = finish
        return candidate

    body = [
        chunk([part(0, "Blue"), part(1, "Azure")]),
        chunk([part(0, ".", "STOP")]),
        chunk([part(1, " sky.", "STOP")]),
    ]
    server.respond(Response(body=body))
    result = collect(httpx, "sync", llm.gemini, server.url).result
    assert result.choices == (llm.Choice(0, "Blue.", "STOP"), llm.Choice(1, "Azure sky.", "STOP"))


def test_gemini_waits_for_every_candidates_finish_reason(server: SSEServer) -> None:
    body = (
        b'data: {"candidates": [{"index": 0, "content": {"parts": [{"text": "a"}]}, '
        b'"finishReason": "STOP"}, {"index": 1, "content": {"parts": [{"text": "b"}]}}]}\r\n\r\n'
    )
    server.respond(Response(body=[body]))
    with pytest.raises(fastsse.StreamInterruptedError, match="finishReason"):
        run(httpx, "sync", "complete", llm.gemini, server.url)


# -- the core drives it; what fails before any response ----------------------------------------


def test_the_body_goes_through_the_protocol_core(
    case: Case, server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed: list[bytes] = []
    real_feed = protocol.StreamMachine.feed

    def feed(machine: protocol.StreamMachine, chunk: bytes) -> Any:
        fed.append(chunk)
        return real_feed(machine, chunk)

    monkeypatch.setattr(protocol.StreamMachine, "feed", feed)
    server.respond(Response(body=[case.body]))
    assert "".join(run(httpx, "sync", "text", case.fmt, server.url)) == case.text
    assert b"".join(fed) == case.body


@pytest.fixture
def closed_port() -> str:
    """A URL on which nothing listens: the connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/chat/completions"


def test_a_refused_connection_is_a_fastsse_error(
    closed_port: str, lib: ModuleType, kind: str
) -> None:
    waits: list[int] = []

    def backoff(attempt: int) -> float:
        waits.append(attempt)
        return 0.0

    with pytest.raises(fastsse.FastSSEError) as caught:
        run(lib, kind, "complete", llm.openai_chat, closed_port, backoff=backoff)
    error = caught.value
    assert isinstance(error, fastsse.StreamInterruptedError)
    assert isinstance(error.__cause__, lib.ConnectError)
    assert "no response after 3 attempts" in str(error)
    assert "connection refused" in str(error)
    assert waits == [0, 1]  # retried twice, as the SDKs do


def test_a_timeout_before_the_response_is_a_fastsse_error(lib: ModuleType, kind: str) -> None:
    # A port whose connections the kernel completes, but that nobody answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = "http://{}:{}/v1/messages".format(*silent.getsockname())
        with pytest.raises(fastsse.FastSSEError) as caught:
            run(lib, kind, "events", llm.anthropic, url, timeout=0.2, max_retries=0)
    assert isinstance(caught.value, fastsse.StreamInterruptedError)
    assert isinstance(caught.value.__cause__, lib.ReadTimeout)
    assert "no response after 1 attempt" in str(caught.value)


def test_an_unusable_url_fails_at_once(kind: str) -> None:
    waits: list[int] = []
    with pytest.raises(fastsse.InvalidRequestError):
        run(httpx, kind, "events", llm.openai_chat, "ftp://127.0.0.1/x", backoff=waits.append)
    assert waits == []


def test_an_answer_whose_body_breaks_keeps_its_cause(server: SSEServer) -> None:
    case = CASES["openai_chat"]
    body = case.body[: len(case.body) // 2]
    server.respond(Response(body=[body], headers={"Content-Length": str(len(case.body))}))
    with pytest.raises(fastsse.StreamInterruptedError, match="broke before data: \\[DONE\\]") as e:
        run(httpx, "sync", "complete", llm.openai_chat, server.url, backoff=no_wait)
    assert isinstance(e.value.__cause__, httpx.TransportError)
    assert "the answer is incomplete" in str(e.value)
    assert len(server.requests) == 1


def _until_async_reading(s: Any) -> bool:
    """From another thread: waits (bounded) until the stream's body is being read."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if getattr(s._pairs, "ag_running", False):
            return True
        time.sleep(0.005)
    return False


@pytest.mark.parametrize("when", ["blocked in a read", "between two tokens"])
def test_an_async_stream_has_a_plain_close_for_another_thread(
    lib: ModuleType, when: str, server: SSEServer
) -> None:
    # Issue 15, defect 2's rule for fastsse.llm: close() is a plain method that any thread may
    # call (a "stop" button); aclose() stays the awaitable. The read it ends raises, and no
    # token is handed out after it.
    case = CASES["openai_chat"]
    first = case.body.split(b"\n\n")[1] + b"\n\n"
    server.respond(Response(body=[first, stall()] if when == "blocked in a read" else [case.body]))
    tokens: list[str] = []
    started = time.monotonic()

    async def main() -> None:
        async with (
            lib.AsyncClient(timeout=TIMEOUT) as client,
            llm.openai_chat.astream(client, server.url) as s,
        ):
            if when == "blocked in a read":
                closer = threading.Thread(target=lambda: _until_async_reading(s) and s.close())
                text = s.text()
                tokens.append(await text.__anext__())
                closer.start()
                with pytest.raises(fastsse.StreamInterruptedError, match="was closed before"):
                    await text.__anext__()
                closer.join(TIMEOUT)
                with pytest.raises(fastsse.StreamInterruptedError, match="was closed before"):
                    await s.finish()
            else:

                async def read_and_close() -> None:
                    async for token in s.text():
                        tokens.append(token)
                        closer = threading.Thread(target=s.close)  # returns, unawaited
                        closer.start()
                        closer.join(TIMEOUT)

                with pytest.raises(RuntimeError, match="closed before its end"):
                    await read_and_close()
            await s.close()  # Awaited, it is aclose(): idempotent.

    asyncio.run(main())
    assert tokens == ["Hello"]
    assert time.monotonic() - started < TIMEOUT / 2  # Not woken by the read timeout.
    server.wait_for_idle()
