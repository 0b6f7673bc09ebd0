"""What a whole LLM answer came to: typed, built from its stream's events as they pass."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastsse import _json
from fastsse._errors import LLMError

__all__ = ["Choice", "Result", "ToolCall", "Usage"]


@dataclass(frozen=True)
class Usage:
    """Token counts, in the provider's own words (``raw``) and in common ones.

    ``input_tokens`` is OpenAI's ``prompt_tokens`` / ``input_tokens``, Anthropic's
    ``input_tokens``, Gemini's ``promptTokenCount``; ``output_tokens`` is ``completion_tokens``
    / ``output_tokens`` / ``candidatesTokenCount``; ``total_tokens`` is the provider's total
    (or their sum, for Anthropic, which gives none).
    """

    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Usage:
        """The usage object of any of the formats."""
        input_tokens = _first_int(raw, "prompt_tokens", "input_tokens", "promptTokenCount")
        output_tokens = _first_int(
            raw, "completion_tokens", "output_tokens", "candidatesTokenCount"
        )
        total = _first_int(raw, "total_tokens", "totalTokenCount")
        if total is None and input_tokens is not None and output_tokens is not None:
            total = input_tokens + output_tokens
        return cls(input_tokens, output_tokens, total, raw)


def _first_int(raw: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = raw.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


@dataclass(frozen=True)
class ToolCall:
    """A call of a tool (a function) the model asked for.

    ``index`` is its place in the answer (OpenAI's tool call index, Anthropic's content block
    index, the Responses output index, the place among Gemini's parts); ``arguments`` is the
    JSON text of its arguments, joined from the deltas that carried it; :attr:`parsed` is that
    text decoded.
    """

    index: int
    id: str | None
    name: str
    arguments: str

    @functools.cached_property
    def parsed(self) -> Any:
        """The arguments decoded (``{}`` for none); :class:`LLMError` when they are not valid
        JSON, as when the token limit cut the call short (see ``finish_reason``)."""
        if not self.arguments:
            return {}
        try:
            return _json.loads(self.arguments)
        except ValueError as error:
            what = f"the arguments of tool call {self.index} ({self.name}) are"
            raise not_json(what, self.arguments, error) from error


def not_json(what: str, text: str, error: ValueError) -> LLMError:
    """The error of ``text`` that should be JSON and is not; ``what`` names it, with its verb."""
    return LLMError(
        f"{what} not valid JSON ({error}): {text[:200]!r}", message=str(error), body=text
    )


@dataclass(frozen=True)
class Choice:
    """One of the answers a request asked for (OpenAI's ``n``, Gemini's ``candidateCount``).

    ``finish_reason`` is the provider's own word for why it ended: ``"stop"``, ``"length"``,
    ``"tool_calls"`` (OpenAI chat), ``"end_turn"``, ``"max_tokens"``, ``"tool_use"``
    (Anthropic's ``stop_reason``), ``"completed"`` or the reason it is incomplete (Responses),
    ``"STOP"``, ``"MAX_TOKENS"`` (Gemini).
    """

    index: int
    text: str
    finish_reason: str | None
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class Result:
    """A whole answer, once its stream ended as it should.

    ``text``, ``finish_reason`` and ``tool_calls`` are those of the first choice (index 0);
    ``choices`` holds every choice by index. ``usage`` is None when the stream carried none
    (OpenAI chat sends it only with ``stream_options: {"include_usage": true}``).
    """

    text: str
    finish_reason: str | None
    usage: Usage | None
    tool_calls: tuple[ToolCall, ...]
    choices: tuple[Choice, ...]
    id: str | None = None
    model: str | None = None


class ChoiceParts:
    """A choice being received: its text deltas, tool call pieces, finish reason."""

    __slots__ = ("finish_reason", "text", "tools")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.finish_reason: str | None = None
        #: index -> [id, name, argument pieces]
        self.tools: dict[int, list[Any]] = {}

    def tool(self, index: int) -> list[Any]:
        parts = self.tools.get(index)
        if parts is None:
            parts = self.tools[index] = [None, "", []]
        return parts

    def choice(self, index: int) -> Choice:
        calls = tuple(
            ToolCall(i, parts[0], parts[1], "".join(parts[2]))
            for i, parts in sorted(self.tools.items())
        )
        return Choice(index, "".join(self.text), self.finish_reason, calls)


class Builder:
    """Collects a stream's answer, event by event; ``add`` returns the event's text delta of
    the first choice (what ``text()`` yields). One per format."""

    def __init__(self) -> None:
        self.choices: dict[int, ChoiceParts] = {}
        self.usage: Mapping[str, Any] | None = None
        self.id: str | None = None
        self.model: str | None = None

    def add(self, value: Any) -> str | None:
        raise NotImplementedError

    def choice(self, index: int) -> ChoiceParts:
        parts = self.choices.get(index)
        if parts is None:
            parts = self.choices[index] = ChoiceParts()
        return parts

    def result(self) -> Result:
        choices = tuple(parts.choice(i) for i, parts in sorted(self.choices.items()))
        first = choices[0] if choices and choices[0].index == 0 else Choice(0, "", None)
        usage = Usage.of(self.usage) if isinstance(self.usage, Mapping) else None
        return Result(
            first.text, first.finish_reason, usage, first.tool_calls, choices, self.id, self.model
        )

    def identify(self, value: Mapping[str, Any], id_key: str, model_key: str) -> None:
        if self.id is None:
            found = value.get(id_key)
            self.id = found if isinstance(found, str) else None
        if self.model is None:
            found = value.get(model_key)
            self.model = found if isinstance(found, str) else None
