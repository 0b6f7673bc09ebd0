"""Streaming LLM answers: OpenAI chat completions and Responses, Anthropic messages, Google
Gemini.

One object per wire format (:data:`openai_chat`, :data:`openai_responses`, :data:`anthropic`,
:data:`gemini`), each with the same methods::

    import httpx
    from fastsse import llm

    with httpx.Client(timeout=60) as client:
        with llm.openai_chat.stream(
            client, "https://api.openai.com/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "gpt-4o-mini", "stream": True, "messages": [...]},
        ) as s:
            print(s.response.headers.get("x-request-id"))
            for token in s.text():
                print(token, end="", flush=True)
        print(s.result.finish_reason, s.result.usage)

``stream()`` gives the response before the first token, then the events (``s.events()``, each
event's decoded JSON) or the text deltas (``s.text()``), then the whole answer (``s.result``:
text, finish reason, usage, tool calls, every choice). ``events()``, ``text()`` and
``complete()`` are shortcuts; ``astream()``, ``aevents()``, ``atext()`` and ``acomplete()`` are
the same for async clients. The client is the caller's (``httpx`` or ``httpx2``), with its
timeouts; the keywords are those of the client's ``stream()``.

A request that gets no response, or a 408, 409, 429 or 5xx, is retried before the first byte
as the official SDKs do (``max_retries=2``, honouring ``Retry-After`` and ``retry-after-ms``);
once the answer has begun it is never asked for again. The stream ends at its format's end
(``data: [DONE]``, ``response.completed``, ``message_stop``, Gemini's ``finishReason``); an
error the server reports raises :class:`LLMError`, and a stream that ends or breaks before its
end raises :class:`StreamInterruptedError`: never a truncated answer returned as if it were
whole. Every error derives from :class:`fastsse.FastSSEError`.
"""

from __future__ import annotations

from fastsse._errors import LLMError, StreamInterruptedError
from fastsse.llm._formats import StreamFormat, anthropic, gemini, openai_chat, openai_responses
from fastsse.llm._result import Choice, Result, ToolCall, Usage
from fastsse.llm._retry import DEFAULT_MAX_RETRIES, sdk_backoff
from fastsse.llm._stream import AsyncLLMStream, LLMStream, RequestOptions

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "AsyncLLMStream",
    "Choice",
    "LLMError",
    "LLMStream",
    "RequestOptions",
    "Result",
    "StreamFormat",
    "StreamInterruptedError",
    "ToolCall",
    "Usage",
    "anthropic",
    "gemini",
    "openai_chat",
    "openai_responses",
    "sdk_backoff",
]
