"""What the LLM tests share: each provider's fixture and what it must give, and a runner
calling a format's method on a fresh httpx or httpx2 client, sync or async."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from fastsse import llm

try:
    import httpx2

    LIBRARIES: list[ModuleType] = [httpx, httpx2]
except ImportError:  # httpx2 needs Python >= 3.11; its cases run wherever it installs
    LIBRARIES = [httpx]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TIMEOUT = 5.0
AUTH = {"Authorization": "Bearer sk-test", "anthropic-version": "2023-06-01"}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def wire_events(body: bytes) -> list[tuple[str, str]]:
    """(event type, data) of each event of a fixture: a plain reading of its blocks."""
    found = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        if not block:
            continue
        kind, data = "message", []
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
        found.append((kind, "\n".join(data)))
    return found


@dataclass(frozen=True)
class Case:
    """A provider's format and its fixture: the JSON events and the text it must give."""

    fmt: llm.StreamFormat
    fixture: str
    skipped: tuple[str, ...]  # data (or event types) that must not be yielded
    text: str
    deltas: int  # how many text deltas it carries
    finish_reason: str
    usage: tuple[int, int, int]  # input, output, total tokens
    id: str
    model: str

    @property
    def body(self) -> bytes:
        return fixture(self.fixture)

    @property
    def sep(self) -> bytes:
        """What ends an event in the fixture: Gemini's CRLF, or LF."""
        return b"\r\n\r\n" if b"\r\n" in self.body else b"\n\n"

    @property
    def expected(self) -> list[Any]:
        return [
            json.loads(data)
            for kind, data in wire_events(self.body)
            if data not in self.skipped and kind not in self.skipped
        ]


CASES = {
    "openai_chat": Case(
        llm.openai_chat,
        "openai_chat.sse",
        ("[DONE]",),
        "Hello! How can I help you today?",
        9,
        "stop",
        (19, 10, 29),
        "chatcmpl-AxZ41pQ9k2b7",
        "gpt-4o-mini-2024-07-18",
    ),
    "openai_responses": Case(
        llm.openai_responses,
        "openai_responses.sse",
        (),
        "Hi there! What can I do for you?",
        10,
        "completed",
        (36, 11, 47),
        "resp_67ccd2bed1ec8190b14f964abc054267",
        "gpt-4.1-2025-04-14",
    ),
    "anthropic": Case(
        llm.anthropic,
        "anthropic_messages.sse",
        ("ping",),
        "Hello! I'm Claude. How can I help?",
        10,
        "end_turn",
        (25, 12, 37),
        "msg_01XFDUDYJgAACzvnptvVoYEL",
        "claude-sonnet-4-20250514",
    ),
    "gemini": Case(
        llm.gemini,
        "gemini.sse",
        (),
        "Hello! I'm Gemini, a large language model trained by Google. How can I help you today?\n",
        4,
        "STOP",
        (9, 13, 22),
        "mKdAaPqMA8K3nvgPr_e1iQQ",
        "gemini-2.0-flash",
    ),
}
BODY = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}


def no_wait(attempt: int) -> float:
    """Retries at once: the tests count requests, not seconds."""
    return 0.0


def run(lib: ModuleType, kind: str, method: str, fmt: llm.StreamFormat, url: str, **kw: Any) -> Any:
    """Calls ``fmt.<method>`` (events, text or complete; the async twin when ``kind`` is
    async) with a fresh client of ``lib``; lists what an iterator gives."""
    kw.setdefault("json", BODY)
    kw.setdefault("headers", AUTH)
    kw.setdefault("backoff", no_wait)
    if kind == "sync":
        with lib.Client(timeout=TIMEOUT) as client:
            result = getattr(fmt, method)(client, url, **kw)
            return result if method == "complete" else list(result)

    async def main() -> Any:
        async with lib.AsyncClient(timeout=TIMEOUT) as client:
            result = getattr(fmt, "a" + method)(client, url, **kw)
            if method == "complete":
                return await result
            return [value async for value in result]

    return asyncio.run(main())


@dataclass
class Seen:
    """What a ``stream()`` block saw: the response on entering, the text deltas, the result."""

    status: int
    headers: dict[str, str]
    deltas: list[str]
    result: llm.Result


def collect(lib: ModuleType, kind: str, fmt: llm.StreamFormat, url: str, **kw: Any) -> Seen:
    """Opens ``fmt.stream()`` (or ``astream()``) on a fresh client, reads the response, then
    the text deltas to the end, then the result."""
    kw.setdefault("json", BODY)
    kw.setdefault("headers", AUTH)
    kw.setdefault("backoff", no_wait)
    if kind == "sync":
        with lib.Client(timeout=TIMEOUT) as client, fmt.stream(client, url, **kw) as s:
            status, headers = s.response.status_code, dict(s.response.headers)
            deltas = list(s.text())
        return Seen(status, headers, deltas, s.result)

    async def main() -> Seen:
        async with lib.AsyncClient(timeout=TIMEOUT) as client, fmt.astream(client, url, **kw) as s:
            status, headers = s.response.status_code, dict(s.response.headers)
            deltas = [delta async for delta in s.text()]
        return Seen(status, headers, deltas, s.result)

    return asyncio.run(main())
