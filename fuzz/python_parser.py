"""Atheris harness: ``fastsse.Parser`` (the Rust core, through the binding) against
``fastsse._pure.PureParser`` on arbitrary bytes at arbitrary chunkings.

Each input is read as a plan (:func:`plan_of`): connections of chunks (``bytes``, ``bytearray``
or ``memoryview``, empty ones included), a size limit and its mode, a resume id. Both parsers
must give the same events, errors, ``last_event_id``, ``retry``, ``oversized`` and ``pending``
after every call, the same events and final state as the connections fed whole, and, without a
limit, the events of the spec oracle (the checks of
``tests/parser/test_parser_differential.py``, reused).

    python fuzz/python_parser.py [CORPUS_DIR ...] [-max_total_time=600]   # needs atheris
    make fuzz                                                           # both fuzzers

Without atheris the module still imports: ``tests/parser/test_fuzz_regressions.py`` replays
every input kept in ``fuzz/seeds/python_parser/`` (seeds and findings) through :func:`one_input`.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "parser"))

import fastsse
import fastsse._pure
import test_parser_differential
from fastsse._pure import PureParser
from support import parser_cases
from support.parser_cases import spec_oracle
from test_parser_differential import Chunk, compare

RESUME_IDS = ("", "42", "é", "")
CONNECTION_END = 0xFF


def plan_of(data: bytes) -> tuple[list[tuple[bytes, list[Chunk]]], dict[str, Any]]:
    """Reads an input: byte 0 picks the mode (default limit, or a limit of 1 + byte 1 bytes with
    ``on_oversize`` "skip" or "error"); byte 2 holds the number of chunk bytes that follow (low
    five bits), the resume id (bits 5-6) and ``comments`` (bit 7). A chunk byte is ``0xFF`` for
    the end of a connection, else a length (low six bits, 0 for an empty chunk) and a kind (high
    two bits). The remaining bytes are the stream; what the chunks leave over is the last
    chunk."""
    head = data[:3].ljust(3, b"\0")
    mode, limit, layout = head
    options: dict[str, Any] = {
        "last_event_id": RESUME_IDS[(layout >> 5) & 3],
        "comments": bool(layout & 0x80),
    }
    if mode % 3:
        options["max_event_size"] = 1 + limit
        options["on_oversize"] = "skip" if mode % 3 == 1 else "error"
    lengths_end = 3 + (layout & 0x1F)
    stream = data[lengths_end:]
    plan: list[tuple[bytes, list[Chunk]]] = []
    chunks: list[Chunk] = []
    connection = b""
    for code in data[3:lengths_end]:
        if code == CONNECTION_END:
            plan.append((connection, chunks))
            chunks, connection = [], b""
            continue
        piece, stream = stream[: code & 0x3F], stream[code & 0x3F :]
        chunks.append(_as_kind(piece, code >> 6))
        connection += piece
    chunks.append(stream)
    plan.append((connection + stream, chunks))
    return plan, options


def _as_kind(piece: bytes, kind: int) -> Chunk:
    if kind == 1:
        return bytearray(piece)
    if kind == 2:
        return memoryview(b"<" + piece + b">")[1:-1]  # a view into a larger buffer
    return piece


def pending_after_each_call(parser: Any, plan: list[tuple[bytes, list[Chunk]]]) -> list[bool]:
    seen = []
    for _, chunks in plan:
        for chunk in chunks:
            # compare() checks the errors; this is about the state they leave.
            with contextlib.suppress(fastsse.EventTooLargeError):
                parser.feed(chunk)
            seen.append(parser.pending)
        parser.finish()
        seen.append(parser.pending)
    return seen


def one_input(data: bytes) -> None:
    plan, options = plan_of(data)
    steps = compare(plan, **options)
    rust_pending = pending_after_each_call(fastsse.Parser(**options), plan)
    assert rust_pending == pending_after_each_call(PureParser(**options), plan)
    assert not rust_pending[-1]
    if "max_event_size" in options:
        return
    expected_events: list[Any] = []
    expected_comments: list[str] = []
    resume_id, retry = options["last_event_id"], None
    for stream, _ in plan:
        outcome = spec_oracle(stream, resume_id)
        expected_events.extend(outcome.events)
        expected_comments.extend(outcome.comments if options["comments"] else ())
        resume_id = outcome.last_event_id
        retry = outcome.retry if outcome.retry is not None else retry
    assert [event for step in steps for event in step.events] == expected_events
    assert [comment for step in steps for comment in step.comments] == expected_comments
    assert (steps[-1].last_event_id, steps[-1].retry) == (resume_id, retry)


def main() -> None:
    import atheris

    # Coverage of the pure parser and of the checks guides the fuzzer (the Rust side is a black
    # box to atheris). They are imported already, so their functions are instrumented in place.
    for owner in (PureParser, fastsse._pure, parser_cases, test_parser_differential):
        for value in vars(owner).values():
            if inspect.isfunction(value):
                atheris.instrument_func(value)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
