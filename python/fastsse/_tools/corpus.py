"""Deterministic event-stream corpora for the benchmarks (``benches/``) and ``fastsse bench``.

Each generator is seeded, so every run parses the same bytes. Sizes are a few MB: large enough
for stable timings, small enough that one round of the slowest parser stays well under a second.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from typing import Callable

#: The read size of the benchmarks: what httpx typically hands over per read on a busy stream.
CHUNK_SIZE = 16 * 1024

#: Words for the LLM corpus; a few are not ASCII, as real model output is not.
_WORD_LIST = (
    "the of and to in is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if so no "
    "stream event token model server client parser chunk buffer latency throughput rust python "
    "café naïve déjà vu — “quoted” 東京 数据 😀 ✓"
)
_WORDS = tuple(_WORD_LIST.split())

#: What each corpus holds, in a few words: printed by ``fastsse bench`` and quoted verbatim in
#: the README's benchmark table as "parse <description>" (tests/package/test_readme.py checks it).
DESCRIPTIONS = {
    "small": "one-line events, data: x",
    "llm": "LLM token events, ~150 B JSON + id",
    "64k": "64 KiB base64 payloads",
    "multiline": "typed events, 2-20 data lines",
}


@dataclass(frozen=True)
class Corpus:
    """An event stream to parse, and how many events it holds."""

    name: str
    #: One of DESCRIPTIONS.
    description: str
    data: bytes
    events: int

    def chunks(self, size: int = CHUNK_SIZE) -> list[bytes]:
        """The stream as the socket would deliver it: ``size`` bytes at a time, split anywhere
        (mid-line, mid-UTF-8 sequence)."""
        return chunked(self.data, size)

    def per_event(self) -> list[bytes]:
        """The stream as LLM servers send it: each event flushed on its own."""
        return [event + b"\n\n" for event in self.data.split(b"\n\n") if event]


def chunked(data: bytes, size: int = CHUNK_SIZE) -> list[bytes]:
    """Splits ``data`` into pieces of ``size`` bytes (the last one may be shorter)."""
    if size <= 0:
        raise ValueError(f"chunk size must be positive, not {size}")
    return [data[start : start + size] for start in range(0, len(data), size)]


def small_events(size: int = 2_000_000) -> Corpus:
    """``data: x`` events: the per-event overhead, with nothing else to do."""
    event = b"data: x\n\n"
    count = max(1, size // len(event))
    return Corpus("small", DESCRIPTIONS["small"], event * count, count)


def llm_tokens(size: int = 4_000_000, *, seed: int = 1) -> Corpus:
    """An OpenAI-style chat completion stream: ``id:`` lines and ~150 B of JSON per token, closed
    by ``data: [DONE]``."""
    rng = random.Random(seed)
    completion = f"chatcmpl-{rng.getrandbits(32):08x}"
    parts: list[bytes] = []
    total = 0
    count = 0
    while total < size:
        chunk = {
            "id": completion,
            "object": "chat.completion.chunk",
            "created": 1_700_000_000 + count // 50,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": " " + rng.choice(_WORDS)}}],
        }
        payload = json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
        event = f"id: {count}\ndata: {payload}\n\n".encode()
        parts.append(event)
        total += len(event)
        count += 1
    parts.append(b"data: [DONE]\n\n")
    return Corpus("llm", DESCRIPTIONS["llm"], b"".join(parts), count + 1)


def large_payloads(size: int = 8_000_000, *, payload: int = 64 * 1024, seed: int = 2) -> Corpus:
    """Events of one ``payload``-byte data line (base64 text, as for images or documents)."""
    rng = random.Random(seed)
    count = max(1, size // payload)
    # base64 turns 3 bytes into 4 characters; trim to the exact payload size.
    raw = (payload * 3 + 3) // 4
    events = [
        b"data: " + base64.b64encode(rng.randbytes(raw))[:payload] + b"\n\n" for _ in range(count)
    ]
    return Corpus("64k", DESCRIPTIONS["64k"], b"".join(events), count)


def multiline_events(size: int = 4_000_000, *, seed: int = 3) -> Corpus:
    """Typed events with 2-20 data lines of text each, between heartbeat comments."""
    rng = random.Random(seed)
    parts: list[bytes] = []
    total = 0
    count = 0
    while total < size:
        lines = [
            "data: " + " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 14)))
            for _ in range(rng.randint(2, 20))
        ]
        event = "event: update\n" + "\n".join(lines) + "\n\n"
        if count % 16 == 0:
            event = ": keep-alive\n\n" + event
        encoded = event.encode()
        parts.append(encoded)
        total += len(encoded)
        count += 1
    return Corpus("multiline", DESCRIPTIONS["multiline"], b"".join(parts), count)


#: The benchmark corpora by name, each built at ``scale`` times its default size.
GENERATORS: dict[str, Callable[[int], Corpus]] = {
    "small": small_events,
    "llm": llm_tokens,
    "64k": large_payloads,
    "multiline": multiline_events,
}

_DEFAULT_SIZES = {"small": 2_000_000, "llm": 4_000_000, "64k": 8_000_000, "multiline": 4_000_000}


def build(name: str, scale: float = 1.0) -> Corpus:
    """The corpus ``name`` at ``scale`` times its default size."""
    try:
        generator = GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown corpus {name!r}; choose from {', '.join(GENERATORS)}") from None
    return generator(max(1, int(_DEFAULT_SIZES[name] * scale)))
