"""The wire formats: how each LLM API's stream ends, reports errors, and carries its answer."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable

from fastsse._fastsse import Event
from fastsse.llm._result import Builder, ChoiceParts, Result
from fastsse.llm._stream import SKIP, AsyncLLMStream, LLMStream, RequestOptions, error_object

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from fastsse.llm._stream import Client, _Call

__all__ = ["StreamFormat", "anthropic", "gemini", "openai_chat", "openai_responses"]

OnToken = Callable[[str], Any]
OnComplete = Callable[[str], Any]


class StreamFormat:
    """One LLM API's streaming wire format: how it ends, how it reports errors, where its
    answer is. Use the instances: :data:`openai_chat`, :data:`openai_responses`,
    :data:`anthropic`, :data:`gemini`.

    Every method takes the client (``httpx`` or ``httpx2``; ``Client`` for ``stream()``,
    ``events()``, ``text()``, ``complete()``, ``AsyncClient`` for their ``a`` twins), the URL,
    and the keywords of :class:`RequestOptions`: those of the client's ``stream()`` (``json``,
    ``headers``, ``params``, ``timeout``...), ``method`` (POST), ``max_retries`` and
    ``backoff``.
    """

    #: Names the end in errors.
    end_marker = ""
    #: The end marker ends the answer, whatever follows; False: the body's end does (Gemini).
    stops_at_end = True
    #: What asks for a stream, for the error of an answer that is JSON instead.
    streams_when = '"stream": true in the request'

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<fastsse.llm.{self.name}>"

    # The format: one event in, its decoded JSON out (or SKIP); sets ``call.done`` at its end;
    # raises LLMError for an error the server reports.

    def decode(self, event: Event, call: _Call) -> Any:
        raise NotImplementedError

    def builder(self) -> Builder:
        """A fresh collector of this format's answer."""
        raise NotImplementedError

    def is_whole(self, call: _Call) -> bool:
        """Whether the answer is whole once the body ended cleanly."""
        return call.done

    # sync

    def stream(self, client: Client, url: Any, **options: Unpack[RequestOptions]) -> LLMStream:
        """The answer as a stream object: ``with fmt.stream(client, url, json=...) as s:``
        gives ``s.response`` at once, ``s.events()`` / ``s.text()``, then ``s.result``."""
        return LLMStream(self, client, url, options)

    def events(self, client: Client, url: Any, **options: Unpack[RequestOptions]) -> Iterator[Any]:
        """Each event's decoded JSON, up to the end (``[DONE]`` and pings are not yielded, the
        events that end the other formats are)."""
        with self.stream(client, url, **options) as stream:
            yield from stream.events()

    def text(self, client: Client, url: Any, **options: Unpack[RequestOptions]) -> Iterator[str]:
        """The text deltas of the first choice, as they arrive (empty deltas left out)."""
        with self.stream(client, url, **options) as stream:
            yield from stream.text()

    def complete(
        self,
        client: Client,
        url: Any,
        *,
        on_token: OnToken | None = None,
        on_complete: OnComplete | None = None,
        **options: Unpack[RequestOptions],
    ) -> str:
        """The whole text; ``on_token`` is called with each delta as it arrives and
        ``on_complete`` with the whole text once the stream has ended as it should."""
        with self.stream(client, url, **options) as stream:
            for token in stream.text():
                if on_token is not None:
                    on_token(token)
            text = stream.finish().text
        if on_complete is not None:
            on_complete(text)
        return text

    # async

    def astream(
        self, client: Client, url: Any, **options: Unpack[RequestOptions]
    ) -> AsyncLLMStream:
        """The async ``stream()``: ``async with fmt.astream(client, url, json=...) as s:``."""
        return AsyncLLMStream(self, client, url, options)

    async def aevents(
        self, client: Client, url: Any, **options: Unpack[RequestOptions]
    ) -> AsyncIterator[Any]:
        """The async ``events()``."""
        async with self.astream(client, url, **options) as stream:
            async for value in stream.events():
                yield value

    async def atext(
        self, client: Client, url: Any, **options: Unpack[RequestOptions]
    ) -> AsyncIterator[str]:
        """The async ``text()``."""
        async with self.astream(client, url, **options) as stream:
            async for text in stream.text():
                yield text

    async def acomplete(
        self,
        client: Client,
        url: Any,
        *,
        on_token: OnToken | None = None,
        on_complete: OnComplete | None = None,
        **options: Unpack[RequestOptions],
    ) -> str:
        """The async ``complete()``; the callbacks may be plain functions or coroutine
        functions."""
        async with self.astream(client, url, **options) as stream:
            async for token in stream.text():
                if on_token is not None:
                    await _maybe_await(on_token(token))
            text = (await stream.finish()).text
        if on_complete is not None:
            await _maybe_await(on_complete(text))
        return text


async def _maybe_await(result: Any) -> None:
    if inspect.isawaitable(result):
        await result


def _is_blank(data: str) -> bool:
    return not data or data.isspace()


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _arguments(value: Any) -> str:
    """The JSON text of a tool call's arguments sent whole, as an object."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- OpenAI chat completions ------------------------------------------------------------------


class _OpenAIChat(StreamFormat):
    """OpenAI chat completions (and the many servers speaking it): ``data:`` JSON chunks,
    ``data: [DONE]`` at the end, an error as ``{"error": ...}``, ``{"object": "error", ...}``
    or ``event: error``."""

    end_marker = "data: [DONE]"

    def decode(self, event: Event, call: _Call) -> Any:
        data = event.data
        if _is_blank(data):
            return SKIP
        if data.startswith("[DONE]"):
            call.done = True
            return SKIP
        value = call.loads(event)
        details = error_object(value)
        if details is not None or event.event == "error":
            raise call.server_error(event, details or {}, value)
        return value

    def builder(self) -> Builder:
        return _ChatBuilder()


class _ChoicesBuilder(Builder):
    """A format whose every event may carry the answer's id, model and usage, and a list of
    choices by index (OpenAI chat's ``choices``, Gemini's ``candidates``)."""

    #: The keys of the id, the model, the usage and the choices.
    keys = ("id", "model", "usage", "choices")

    def add(self, value: Any) -> str | None:
        if not isinstance(value, Mapping):
            return None
        id_key, model_key, usage_key, choices_key = self.keys
        if self.id is None:
            self.identify(value, id_key, model_key)
        usage = value.get(usage_key)
        if usage is not None:
            self.usage = usage
        first = None
        for choice in value.get(choices_key) or ():
            index = choice.get("index", 0)
            text = self.add_choice(self.choice(index), choice)
            if index == 0 and text:
                first = text
        return first

    def add_choice(self, parts: ChoiceParts, choice: Mapping[str, Any]) -> str | None:
        """Adds one choice's piece; its text delta."""
        raise NotImplementedError


class _ChatBuilder(_ChoicesBuilder):
    def __init__(self) -> None:
        super().__init__()
        #: (choice index, the index a tool call delta carries, or None) -> its call's place.
        self.slots: dict[tuple[Any, Any], int] = {}

    def add_choice(self, parts: ChoiceParts, choice: Mapping[str, Any]) -> str | None:
        delta = choice.get("delta") or {}
        for call in delta.get("tool_calls") or ():
            tool = parts.tool(self._slot(parts, choice.get("index", 0), call))
            if call.get("id"):
                tool[0] = call["id"]
            function = call.get("function") or {}
            if function.get("name"):
                tool[1] = function["name"]
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                tool[2].append(arguments)
        reason = choice.get("finish_reason")
        if reason is not None:
            parts.finish_reason = reason
        content = delta.get("content")
        if isinstance(content, str) and content:
            parts.text.append(content)
            return content
        return None

    def _slot(self, parts: ChoiceParts, choice: Any, call: Mapping[str, Any]) -> int:
        """The place of the call a tool call delta belongs to. OpenAI numbers its calls with
        ``index``; some compatible servers (Ollama) leave it out or send 0 for every call,
        each call whole with its own id: a new id where a call with another id stands is a
        new call, and the deltas without an id that follow belong to it."""
        index = call.get("index")
        if not isinstance(index, int):
            index = None
        key = (choice, index)
        slot = self.slots.get(key)
        call_id = call.get("id")
        if slot is None or (call_id and parts.tools[slot][0] not in (None, call_id)):
            if index is None or index in parts.tools:
                index = max(parts.tools, default=-1) + 1
            slot = self.slots[key] = index
        return slot


# -- OpenAI Responses -------------------------------------------------------------------------


class _OpenAIResponses(StreamFormat):
    """The OpenAI Responses API: typed events (``response.output_text.delta``...), ending with
    ``response.completed`` or ``response.incomplete``; ``response.failed`` and ``error``
    events raise."""

    end_marker = "response.completed"
    _ENDS = frozenset({"response.completed", "response.incomplete"})

    def decode(self, event: Event, call: _Call) -> Any:
        if _is_blank(event.data):
            return SKIP
        value = call.loads(event)
        kind = value.get("type", event.event) if isinstance(value, Mapping) else event.event
        if kind == "error" or event.event == "error":
            raise call.server_error(event, error_object(value) or {}, value)
        if kind == "response.failed":
            failed = (value.get("response") or {}).get("error") or {}
            raise call.server_error(event, failed, value)
        if kind in self._ENDS:
            call.done = True
        return value

    def builder(self) -> Builder:
        return _ResponsesBuilder()


class _ResponsesBuilder(Builder):
    def add(self, value: Any) -> str | None:
        if not isinstance(value, Mapping):
            return None
        kind = value.get("type")
        if kind == "response.output_text.delta":
            delta = value.get("delta")
            if isinstance(delta, str) and delta:
                self.choice(0).text.append(delta)
                return delta
            return None
        if kind in _OpenAIResponses._ENDS:
            self._final(value.get("response") or {})
        elif kind == "response.created":
            self.identify(value.get("response") or {}, "id", "model")
        return None

    def _final(self, response: Mapping[str, Any]) -> None:
        """The response the stream ended with: its usage, status and function calls (whole)."""
        self.identify(response, "id", "model")
        self.usage = response.get("usage")
        parts = self.choice(0)
        status = response.get("status")
        reason = (response.get("incomplete_details") or {}).get("reason")
        parts.finish_reason = _str(reason) if status == "incomplete" and reason else _str(status)
        for index, item in enumerate(response.get("output") or ()):
            if isinstance(item, Mapping) and item.get("type") == "function_call":
                parts.tools[index] = [
                    _str(item.get("call_id")),
                    _str(item.get("name")) or "",
                    [_str(item.get("arguments")) or ""],
                ]


# -- Anthropic messages -----------------------------------------------------------------------


class _Anthropic(StreamFormat):
    """Anthropic messages: typed events from ``message_start`` to ``message_stop``; ``ping``
    skipped; an ``error`` event raises."""

    end_marker = "message_stop"

    def decode(self, event: Event, call: _Call) -> Any:
        if event.event == "ping" or _is_blank(event.data):
            return SKIP
        value = call.loads(event)
        kind = value.get("type", event.event) if isinstance(value, Mapping) else event.event
        if kind == "ping":
            return SKIP
        if kind == "error" or event.event == "error":
            raise call.server_error(event, error_object(value) or {}, value)
        if kind == "message_stop":
            call.done = True
        return value

    def builder(self) -> Builder:
        return _AnthropicBuilder()


class _AnthropicBuilder(Builder):
    def __init__(self) -> None:
        super().__init__()
        #: Content block index -> its text pieces, for the text blocks.
        self.blocks: dict[int, list[str]] = {}
        #: The tool_use blocks whose input came whole at their start (until a delta replaces it).
        self.given: set[int] = set()

    def add(self, value: Any) -> str | None:
        if not isinstance(value, Mapping):
            return None
        kind = value.get("type")
        if kind == "content_block_delta":
            delta = value.get("delta") or {}
            delta_kind = delta.get("type")
            if delta_kind == "text_delta":
                text = delta.get("text")
                if isinstance(text, str) and text:
                    self.blocks.setdefault(value.get("index", 0), []).append(text)
                    return text
            elif delta_kind == "input_json_delta":
                # Only a tool_use block is a call for the caller; a server tool's input
                # (server_tool_use: web search, code execution) arrives the same way.
                index = value.get("index", 0)
                tool = self.choice(0).tools.get(index)
                partial = delta.get("partial_json")
                if tool is not None and isinstance(partial, str):
                    if index in self.given:  # The deltas are the input (as in the SDK).
                        self.given.discard(index)
                        tool[2].clear()
                    tool[2].append(partial)
        elif kind == "content_block_start":
            block = value.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = value.get("index", 0)
                tool = self.choice(0).tool(index)
                tool[0], tool[1] = _str(block.get("id")), _str(block.get("name")) or ""
                given = block.get("input")
                if isinstance(given, Mapping) and given:  # Anthropic's own is {}: deltas follow.
                    tool[2] = [_arguments(given)]
                    self.given.add(index)
        elif kind == "message_start":
            message = value.get("message") or {}
            self.identify(message, "id", "model")
            usage = message.get("usage")
            self.usage = dict(usage) if isinstance(usage, Mapping) else None
        elif kind == "message_delta":
            reason = (value.get("delta") or {}).get("stop_reason")
            if reason is not None:
                self.choice(0).finish_reason = reason
            usage = value.get("usage")
            if isinstance(usage, Mapping):
                # Its counts are cumulative: they replace those of message_start, but for the
                # ones it leaves null (as the SDK, which keeps them).
                fresh = {key: count for key, count in usage.items() if count is not None}
                self.usage = {**(self.usage or {}), **fresh}
        return None

    def result(self) -> Result:
        parts = self.choice(0)
        parts.text = [text for _, pieces in sorted(self.blocks.items()) for text in pieces]
        return super().result()


# -- Google Gemini ----------------------------------------------------------------------------


class _Gemini(StreamFormat):
    """Google Gemini ``models/*:streamGenerateContent?alt=sse``: a ``GenerateContentResponse``
    per event, no end marker: the answer is whole when every candidate carries a
    ``finishReason`` and the body ends. A prompt the API blocked, or an error object, raises
    LLMError."""

    end_marker = "a finishReason"
    stops_at_end = False
    streams_when = "alt=sse in the URL, as in models/...:streamGenerateContent?alt=sse"

    def decode(self, event: Event, call: _Call) -> Any:
        if _is_blank(event.data):
            return SKIP
        value = call.loads(event)
        details = error_object(value)
        if details is not None or event.event == "error":
            raise call.server_error(event, details or {}, value)
        if isinstance(value, Mapping):
            blocked = (value.get("promptFeedback") or {}).get("blockReason")
            if blocked and not value.get("candidates"):
                raise call.server_error(
                    event, {"message": f"the prompt was blocked ({blocked})"}, value
                )
        return value

    def builder(self) -> Builder:
        return _GeminiBuilder()

    def is_whole(self, call: _Call) -> bool:
        builder = call.builder
        return bool(builder.choices) and all(
            parts.finish_reason is not None for parts in builder.choices.values()
        )


class _GeminiBuilder(_ChoicesBuilder):
    keys = ("responseId", "modelVersion", "usageMetadata", "candidates")

    def add_choice(self, parts: ChoiceParts, choice: Mapping[str, Any]) -> str | None:
        texts = []
        for part in (choice.get("content") or {}).get("parts") or ():
            text = part.get("text")
            if isinstance(text, str) and text and not part.get("thought"):
                texts.append(text)
            function = part.get("functionCall")
            if isinstance(function, Mapping):
                # Gemini sends a call whole, its arguments as an object.
                parts.tools[len(parts.tools)] = [
                    _str(function.get("id")),
                    _str(function.get("name")) or "",
                    [_arguments(function.get("args") or {})],
                ]
        reason = choice.get("finishReason")
        if reason is not None:
            parts.finish_reason = reason
        parts.text.extend(texts)
        return "".join(texts)


#: OpenAI ``POST /v1/chat/completions`` with ``"stream": true``, and compatible servers (vLLM,
#: Ollama, llama.cpp, LiteLLM...).
openai_chat: StreamFormat = _OpenAIChat("openai_chat")
#: OpenAI ``POST /v1/responses`` with ``"stream": true``.
openai_responses: StreamFormat = _OpenAIResponses("openai_responses")
#: Anthropic ``POST /v1/messages`` with ``"stream": true``.
anthropic: StreamFormat = _Anthropic("anthropic")
#: Google Gemini ``POST .../models/{model}:streamGenerateContent?alt=sse``.
gemini: StreamFormat = _Gemini("gemini")
