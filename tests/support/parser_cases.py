"""Shared helpers of the parser tests: the two parsers, the spec vectors and the chunkings.

Every expected value in ``VECTORS`` is written by hand from the WHATWG HTML standard,
"9.2.6 Parsing an event stream" and "Interpreting an event stream"
(https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream),
with invalid UTF-8 decoded as the Encoding standard's "UTF-8 decode" does (one U+FFFD per
maximal invalid subpart). None of them was produced by running a parser.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any, Callable, NamedTuple, Optional, Union

import fastsse
import pytest
from fastsse._pure import PureParser

Chunk = Union[bytes, bytearray, memoryview]
EventTuple = tuple[str, str, str, Optional[int]]

PARSERS = [
    pytest.param(fastsse.Parser, id="rust"),
    pytest.param(PureParser, id="pure"),
]

M = "message"
BOM = b"\xef\xbb\xbf"


class Vector(NamedTuple):
    name: str
    stream: bytes
    events: list[EventTuple]
    last_event_id: str = ""
    retry: int | None = None


def ev(data: str, event: str = M, id: str = "", retry: int | None = None) -> EventTuple:
    return (event, data, id, retry)


VECTORS: list[Vector] = [
    # --- data lines -----------------------------------------------------------------------
    Vector("single_data", b"data: hello\n\n", [ev("hello")]),
    Vector("two_events", b"data: 1\n\ndata: 2\n\n", [ev("1"), ev("2")]),
    Vector("data_lines_joined_with_lf", b"data: a\ndata: b\ndata: c\n\n", [ev("a\nb\nc")]),
    Vector("spec_example_yhoo", b"data: YHOO\ndata: +2\ndata: 10\n\n", [ev("YHOO\n+2\n10")]),
    Vector("only_one_trailing_lf_removed", b"data: a\ndata:\n\n", [ev("a\n")]),
    Vector("empty_data_value_dispatches", b"data:\n\n", [ev("")]),
    Vector("no_colon_is_empty_value", b"data\n\n", [ev("")]),
    Vector("spec_example_empty_data", b"data\n\ndata\ndata\n\ndata:", [ev(""), ev("\n")]),
    Vector("spec_example_space_optional", b"data:test\n\ndata: test\n\n", [ev("test"), ev("test")]),
    Vector("one_leading_space_removed_only", b"data:  x\n\n", [ev(" x")]),
    Vector("spaces_only_value", b"data:   \n\n", [ev("  ")]),
    Vector("tab_after_colon_kept", b"data:\tx\n\n", [ev("\tx")]),
    Vector("trailing_space_kept", b"data: x \n\n", [ev("x ")]),
    Vector("colons_in_value_kept", b"data: a:b: c\n\n", [ev("a:b: c")]),
    Vector("value_starting_with_colon", b"data::x\n\n", [ev(":x")]),
    Vector("whitespace_line_is_not_blank", b"data: x\n \ndata: y\n\n", [ev("x\ny")]),
    # --- unknown fields and comments ------------------------------------------------------
    Vector("space_before_colon_is_another_field", b"data : x\n\n", []),
    Vector("field_names_are_case_sensitive", b"Data: x\nDATA: y\n\n", []),
    Vector("unknown_fields_ignored", b"foo: bar\ndata: x\nbaz\n\n", [ev("x")]),
    Vector("unknown_field_only_block", b"foo: bar\n\n", []),
    Vector("comment_ignored", b": hello\ndata: x\n\n", [ev("x")]),
    Vector("comment_between_data_lines", b"data: a\n: c\ndata: b\n\n", [ev("a\nb")]),
    Vector("comment_only_blocks", b": c\n\n:\n\n", []),
    Vector("comment_looking_like_field", b":data: x\n\n", []),
    Vector("nul_in_field_name", b"da\x00ta: x\n\n", []),
    # --- event type -----------------------------------------------------------------------
    Vector("event_type", b"event: add\ndata: x\n\n", [ev("x", "add")]),
    Vector("event_type_last_wins", b"event: a\nevent: b\ndata: x\n\n", [ev("x", "b")]),
    Vector("empty_event_means_message", b"event: a\nevent:\ndata: x\n\n", [ev("x")]),
    Vector("event_without_colon_means_message", b"event\ndata: x\n\n", [ev("x")]),
    Vector(
        "event_type_reset_after_dispatch",
        b"event: a\ndata: 1\n\ndata: 2\n\n",
        [ev("1", "a"), ev("2")],
    ),
    Vector("event_only_block_not_dispatched", b"event: ping\n\ndata: x\n\n", [ev("x")]),
    Vector("event_type_second_space_kept", b"event:  a\ndata: x\n\n", [ev("x", " a")]),
    Vector("event_type_with_empty_data", b"event: e\ndata\n\n", [ev("", "e")]),
    # --- id -------------------------------------------------------------------------------
    Vector("id_set", b"id: 1\ndata: x\n\n", [ev("x", id="1")], "1"),
    Vector(
        "id_persists", b"id: 1\ndata: a\n\ndata: b\n\n", [ev("a", id="1"), ev("b", id="1")], "1"
    ),
    Vector("id_after_data_in_block", b"data: x\nid: 9\n\n", [ev("x", id="9")], "9"),
    Vector("id_last_in_block_wins", b"id: 1\nid: 2\ndata: x\n\n", [ev("x", id="2")], "2"),
    Vector("id_only_block_updates_last_event_id", b"id: 7\n\ndata: x\n\n", [ev("x", id="7")], "7"),
    Vector("id_only_block_at_end", b"id: 7\n\n", [], "7"),
    Vector("id_and_event_only_block", b"id: 3\nevent: foo\n\n", [], "3"),
    Vector("empty_id_resets", b"id: 1\ndata: a\n\nid:\ndata: b\n\n", [ev("a", id="1"), ev("b")]),
    Vector(
        "id_without_colon_resets", b"id: 1\ndata: a\n\nid\ndata: b\n\n", [ev("a", id="1"), ev("b")]
    ),
    Vector("empty_id_only_block_resets", b"id: 1\n\nid\n\n", []),
    Vector(
        "id_with_nul_ignored",
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [ev("a", id="1"), ev("b", id="1")],
        "1",
    ),
    Vector("id_only_nul_ignored", b"id: \x00\ndata: x\n\n", [ev("x")]),
    Vector("id_spaces_kept", b"id:  a b \ndata: x\n\n", [ev("x", id=" a b ")], " a b "),
    Vector("id_unicode", "id: é€😀\ndata: x\n\n".encode(), [ev("x", id="é€😀")], "é€😀"),
    Vector("id_invalid_utf8", b"id: \xff\ndata: x\n\n", [ev("x", id="\ufffd")], "\ufffd"),
    Vector(
        "spec_example_ids",
        b": test stream\n\ndata: first event\nid: 1\n\n"
        b"data:second event\nid\n\ndata:  third event\n",
        [ev("first event", id="1"), ev("second event")],
    ),
    # --- retry ----------------------------------------------------------------------------
    Vector("retry", b"retry: 1000\ndata: x\n\n", [ev("x", retry=1000)], "", 1000),
    Vector("retry_only_block", b"retry: 500\n\ndata: x\n\n", [ev("x")], "", 500),
    Vector("retry_without_space", b"retry:5\ndata: x\n\n", [ev("x", retry=5)], "", 5),
    Vector("retry_zero", b"retry: 0\ndata: x\n\n", [ev("x", retry=0)], "", 0),
    Vector("retry_leading_zeros", b"retry: 0010\ndata: x\n\n", [ev("x", retry=10)], "", 10),
    Vector(
        "retry_30_digits",
        b"retry: 123456789012345678901234567890\ndata: x\n\n",
        [ev("x", retry=123456789012345678901234567890)],
        "",
        123456789012345678901234567890,
    ),
    Vector(
        "retry_1000_digits",
        b"retry: " + b"9" * 1000 + b"\ndata: x\n\n",
        [ev("x", retry=10**1000 - 1)],
        "",
        10**1000 - 1,
    ),
    Vector(
        "retry_invalid_keeps_previous", b"retry: 100\n\nretry: abc\ndata: x\n\n", [ev("x")], "", 100
    ),
    Vector(
        "retry_last_valid_in_block", b"retry: 1\nretry: 2\ndata: x\n\n", [ev("x", retry=2)], "", 2
    ),
    Vector(
        "retry_valid_then_invalid", b"retry: 1\nretry: x\ndata: d\n\n", [ev("d", retry=1)], "", 1
    ),
    Vector(
        "retry_not_carried_to_next_event",
        b"retry: 1\ndata: a\n\ndata: b\n\n",
        [ev("a", retry=1), ev("b")],
        "",
        1,
    ),
    # The reconnection time is set when the field is processed, not at dispatch.
    Vector("retry_applies_without_blank_line", b"retry: 300\n", [], "", 300),
    Vector("retry_applies_in_unterminated_event", b"retry: 300\ndata: x\n", [], "", 300),
    Vector("retry_line_without_line_end_ignored", b"retry: 300", [], "", None),
    # --- line ends ------------------------------------------------------------------------
    Vector("crlf", b"data: a\r\n\r\n", [ev("a")]),
    Vector("cr", b"data: a\r\r", [ev("a")]),
    Vector("lf_then_crlf_blank", b"data: a\n\r\n", [ev("a")]),
    Vector("crlf_then_lf_blank", b"data: a\r\n\n", [ev("a")]),
    Vector("lf_then_cr_blank", b"data: a\n\r", [ev("a")]),
    Vector("mixed_line_ends", b"data: a\rdata: b\ndata: c\r\n\r\n", [ev("a\nb\nc")]),
    Vector("cr_then_crlf", b"data: a\r\r\ndata: b\n\n", [ev("a"), ev("b")]),
    Vector("lf_cr_then_data", b"data: a\n\rdata: b\r\n\r\n", [ev("a"), ev("b")]),
    Vector(
        "cr_only_stream", b"event: e\rdata: 1\rdata: 2\r\rdata: 3\r\r", [ev("1\n2", "e"), ev("3")]
    ),
    Vector("leading_blank_lines", b"\n\r\r\n\n\rdata: x\n\n", [ev("x")]),
    Vector(
        "crlf_everything",
        b"id: 1\r\nevent: e\r\ndata: x\r\n\r\n: c\r\nretry: 5\r\ndata: y\r\n\r\n",
        [ev("x", "e", "1"), ev("y", id="1", retry=5)],
        "1",
        5,
    ),
    # --- byte order mark ------------------------------------------------------------------
    Vector("bom_stripped", BOM + b"data: x\n\n", [ev("x")]),
    Vector("bom_then_blank_line", BOM + b"\ndata: x\n\n", [ev("x")]),
    Vector("bom_then_comment", BOM + b": hi\ndata: x\n\n", [ev("x")]),
    Vector("bom_then_crlf", BOM + b"data: x\r\n\r\n", [ev("x")]),
    Vector("bom_only", BOM, []),
    # Only one BOM is stripped: the second makes the first field name "\ufeffdata".
    Vector("double_bom_second_kept", BOM + BOM + b"data: x\n\ndata: y\n\n", [ev("y")]),
    Vector("bom_not_at_start_kept", b"data: a\n\n" + BOM + b"data: b\n\n", [ev("a")]),
    Vector("bom_in_value_kept", b"data: " + BOM + b"x\n\n", [ev("\ufeffx")]),
    Vector("partial_bom_two_bytes_is_data", b"\xef\xbbdata: x\n\ndata: y\n\n", [ev("y")]),
    Vector("partial_bom_one_byte_is_data", b"\xefdata: x\n\ndata: y\n\n", [ev("y")]),
    Vector("partial_bom_line", b"\xef\xbb\n\ndata: y\n\n", [ev("y")]),
    # --- characters that are not line ends ------------------------------------------------
    Vector("u2028_kept", b"data: a\xe2\x80\xa8b\n\n", [ev("a\u2028b")]),
    Vector("u2029_kept", b"data: a\xe2\x80\xa9b\n\n", [ev("a\u2029b")]),
    Vector("nel_kept", b"data: a\xc2\x85b\n\n", [ev("a\x85b")]),
    Vector("vt_ff_kept", b"data: a\x0bb\x0cc\n\n", [ev("a\x0bb\x0cc")]),
    Vector("fs_gs_rs_kept", b"data: \x1c\x1d\x1e\n\n", [ev("\x1c\x1d\x1e")]),
    Vector(
        "separators_in_event_and_id",
        b"event: a\xe2\x80\xa8b\nid: c\x0bd\xc2\x85\ndata: x\n\n",
        [ev("x", "a\u2028b", "c\x0bd\x85")],
        "c\x0bd\x85",
    ),
    Vector("nul_in_data_kept", b"data: a\x00b\n\n", [ev("a\x00b")]),
    Vector("nul_in_event_kept", b"event: a\x00b\ndata: x\n\n", [ev("x", "a\x00b")]),
    # --- UTF-8 ----------------------------------------------------------------------------
    Vector("multibyte_utf8", "data: é€😀中\n\n".encode(), [ev("é€😀中")]),
    Vector("multibyte_event_type", "event: ñandú\ndata: ü\n\n".encode(), [ev("ü", "ñandú")]),
    Vector("invalid_ff", b"data: a\xffb\n\n", [ev("a\ufffdb")]),
    Vector("lone_continuation_bytes", b"data: \x80\x80\n\n", [ev("\ufffd\ufffd")]),
    Vector("truncated_sequence_before_lf", b"data: \xe2\x82\n\n", [ev("\ufffd")]),
    Vector("truncated_sequence_then_ascii", b"data: \xf0\x9f\x98x\n\n", [ev("\ufffdx")]),
    Vector("invalid_continuation_restored", b"data: \xe2(\xa1\n\n", [ev("\ufffd(\ufffd")]),
    Vector("sequence_broken_by_line_end", b"data: \xc3\ndata: \xa9\n\n", [ev("\ufffd\n\ufffd")]),
    Vector("overlong_encoding", b"data: \xc0\xaf\n\n", [ev("\ufffd\ufffd")]),
    Vector("surrogate_encoding", b"data: \xed\xa0\x80\n\n", [ev("\ufffd\ufffd\ufffd")]),
    Vector("above_u10ffff", b"data: \xf4\x90\x80\x80\n\n", [ev("\ufffd" * 4)]),
    Vector("invalid_in_event_type", b"event: \xff\ndata: x\n\n", [ev("x", "\ufffd")]),
    Vector("invalid_in_field_name", b"dat\xe1: x\n\n", []),
    # --- end of stream --------------------------------------------------------------------
    Vector("empty_stream", b"", []),
    Vector("blank_lines_only", b"\n\n\r\n\r", []),
    Vector("unterminated_without_line_end", b"data: x", []),
    Vector("unterminated_without_blank_line", b"data: x\n", []),
    Vector("unterminated_after_event", b"data: a\n\ndata: b\n", [ev("a")]),
    Vector("unterminated_crlf", b"data: a\r\n\r\ndata: b\r\n", [ev("a")]),
    Vector("unterminated_cr", b"data: a\r\rdata: b\r", [ev("a")]),
    Vector(
        "unterminated_id_not_committed",
        b"id: 1\ndata: a\n\nid: 2\ndata: b\n",
        [ev("a", id="1")],
        "1",
    ),
    Vector("unterminated_id_only_not_committed", b"id: 5\n", []),
    Vector("unterminated_event_type", b"event: e\ndata: x", []),
]

# `retry` values that are not "only ASCII digits": each must be ignored.
INVALID_RETRY_VALUES: list[bytes] = [
    b"",
    b"-1",
    b"+1",
    b" 1",  # a second space: only one is removed
    b"1 ",
    b"\t1",
    b"1_000",
    b"1.5",
    b"1e3",
    b"0x10",
    b"12a",
    b"1\x00",
    "\uff11\uff12".encode(),  # fullwidth digits
    "١٢".encode(),  # Arabic-Indic digits
    "²".encode(),  # superscript two (str.isdigit() is true for it)
    "৩".encode(),  # Bengali digit three
]
for _value in INVALID_RETRY_VALUES:
    VECTORS.append(
        Vector(f"retry_invalid_{_value!r}", b"retry: " + _value + b"\ndata: x\n\n", [ev("x")])
    )
VECTORS.append(Vector("retry_without_colon_ignored", b"retry\ndata: x\n\n", [ev("x")]))

#: Streams read with ``dataless_blocks=True``: a block with an ``id:`` or ``retry:`` field that
#: sets something, and no data, is an event with empty data (httpx-sse's and httpx2's reading,
#: written by hand from their decoders: the block's type, the last event ID after the block,
#: the block's retry); every other block as the spec says.
DATALESS_VECTORS: list[Vector] = [
    Vector(
        "mcp_priming_block",
        b"id: evt-1\nretry: 0\n\nid: evt-2\ndata: x\n\n",
        [ev("", id="evt-1", retry=0), ev("x", id="evt-2")],
        "evt-2",
        0,
    ),
    Vector(
        "id_only_block_then_event",
        b"data: a\n\nid: 7\n\ndata: b\n\n",
        [ev("a"), ev("", id="7"), ev("b", id="7")],
        "7",
    ),
    Vector(
        "block_repeating_the_current_id_and_retry",
        b"id: 3\nretry: 5\ndata: a\n\nid: 3\n\nretry: 5\n\n",
        [ev("a", id="3", retry=5), ev("", id="3"), ev("", id="3", retry=5)],
        "3",
        5,
    ),
    Vector("event_type_of_its_own", b"event: x\nid: 5\n\n", [ev("", "x", "5")], "5"),
    Vector("retry_with_event_type", b"retry: 9\nevent: y\n\n", [ev("", "y", retry=9)], "", 9),
    Vector("empty_id_resets", b"id: 1\n\nid\n\n", [ev("", id="1"), ev("")]),
    Vector("lone_event_not_dispatched", b"event: x\n\nevent: y\nfoo: 1\n\n", []),
    Vector("comment_only_not_dispatched", b": ping\n\n:\n\n\n\n", []),
    Vector("nul_id_not_dispatched", b"id: a\x00b\n\n", []),
    Vector("invalid_retry_not_dispatched", b"retry: 1s\n\nretry:\n\n", []),
    Vector("unterminated_block_not_dispatched", b"data: a\n\nid: 2\nretry: 3\n", [ev("a")], "", 3),
    Vector(
        "crlf_and_cr_line_ends",
        b"retry: 5\r\n\r\nid: 6\r\rdata: a\r\n\r\n",
        [ev("", retry=5), ev("", id="6"), ev("a", id="6")],
        "6",
        5,
    ),
    Vector(
        "after_a_bom",
        BOM + b"id: 1\n\n",
        [ev("", id="1")],
        "1",
    ),
]


# --- chunkings --------------------------------------------------------------------------------


def whole(stream: bytes) -> list[Chunk]:
    return [stream]


def one_byte(stream: bytes) -> list[Chunk]:
    return [stream[i : i + 1] for i in range(len(stream))]


def split_at(stream: bytes, position: int) -> list[Chunk]:
    return [stream[:position], stream[position:]]


def random_split(stream: bytes, seed: int) -> list[bytes]:
    """Random cut points, duplicates allowed, so some chunks are empty."""
    rng = random.Random(seed)
    cuts = sorted(rng.randint(0, len(stream)) for _ in range(rng.randint(1, len(stream) // 3 + 2)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:])]


def as_bytearrays(stream: bytes, seed: int) -> list[Chunk]:
    return [bytearray(chunk) for chunk in random_split(stream, seed)]


def as_memoryviews(stream: bytes, seed: int) -> list[Chunk]:
    view = memoryview(stream)
    out: list[Chunk] = []
    position = 0
    for chunk in random_split(stream, seed):
        out.append(view[position : position + len(chunk)])
        position += len(chunk)
    return out


RANDOM_SEEDS = range(6)

ParserFactory = Callable[..., Any]


class Outcome(NamedTuple):
    events: list[EventTuple]
    last_event_id: str
    retry: int | None
    comments: tuple[str, ...] = ()


def expected(vector: Vector) -> Outcome:
    """What a parser must make of ``vector``'s stream, in any chunking."""
    return Outcome(vector.events, vector.last_event_id, vector.retry)


def as_tuple(event: fastsse.Event) -> EventTuple:
    return (event.event, event.data, event.id, event.retry)


def run(factory: ParserFactory, chunks: Sequence[Chunk], **kwargs: Any) -> Outcome:
    """Feeds every chunk, then ends the stream; ``finish()`` must not return an event."""
    parser = factory(**kwargs)
    events: list[EventTuple] = []
    for chunk in chunks:
        result = parser.feed(chunk)
        assert isinstance(result, list)
        events.extend(as_tuple(event) for event in result)
    assert parser.finish() == [], "finish() returned an unterminated event"
    return Outcome(events, parser.last_event_id, parser.retry)


# --- an independent oracle, straight from the spec's prose (no size limit) --------------------

_LINE_END = re.compile(r"\r\n|\r|\n")


def spec_oracle(
    stream: bytes, last_event_id: str = "", *, dataless_blocks: bool = False
) -> Outcome:
    """Decodes the whole stream first (UTF-8 decode strips one BOM), then runs the spec's steps.
    With ``dataless_blocks``, a block that sets an id or a retry without data is an event with
    empty data, as httpx-sse and httpx2 read it."""
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _LINE_END.split(text)
    lines.pop()  # the text after the last line end is not a line: the stream ended inside it
    events: list[EventTuple] = []
    data, event_type, event_retry = "", "", None
    id_buffer, retry = last_event_id, None
    comments: list[str] = []
    id_or_retry = False  # the block set an id or a retry
    for line in lines:
        if not line:
            last_event_id = id_buffer
            if data:
                events.append((event_type or M, data[:-1], last_event_id, event_retry))
            elif dataless_blocks and id_or_retry:
                events.append((event_type or M, "", last_event_id, event_retry))
            data, event_type, event_retry, id_or_retry = "", "", None, False
            continue
        if line.startswith(":"):
            # Ignored by the spec; kept, as the parsers do with comments=True, for comparison.
            comment = line[1:]
            comments.append(comment[1:] if comment.startswith(" ") else comment)
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data += value + "\n"
        elif name == "event":
            event_type = value
        elif name == "id":
            if "\0" not in value:
                id_buffer = value
                id_or_retry = True
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            retry = event_retry = int(value)
            id_or_retry = True
    return Outcome(events, last_event_id, retry, tuple(comments))
