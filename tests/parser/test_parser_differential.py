"""Differential property tests: the Rust parser against the pure-Python reference parser.

Random streams built from every kind of line the vectors cover, fed at random chunkings (and
across ``finish()`` into a new connection), must give the same events, errors, last_event_id,
retry, oversized count and, with ``comments=True``, comments from both parsers, with and without
``dataless_blocks``. With the default size limit both must also agree with an independent,
whole-stream reading of the spec (``parser_cases.spec_oracle``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Union

import fastsse
from fastsse import EventTooLargeError
from fastsse._pure import PureParser
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.parser_cases import BOM, as_tuple, spec_oracle

SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
FEWER = settings(SETTINGS, max_examples=300)

LINE_ENDS = [b"\n", b"\r", b"\r\n"]

special_values = st.sampled_from(
    [
        b"",
        b" ",
        b"x",
        b"\x00",
        b"a\x00b",
        b"0",
        b"007",
        b"123",
        b"123456789012345678901234567890",
        b"-1",
        b"+1",
        b" 1",
        b"1 ",
        b"1_000",
        "\uff11\uff12".encode(),
        "²".encode(),
        b"\xff",
        b"\xe2\x82",  # truncated sequence
        b"\x80",
        b"\xed\xa0\x80",
        b"\xe2\x80\xa8",  # U+2028
        b"\xe2\x80\xa9",  # U+2029
        b"\xc2\x85",  # NEL
        b"\x0b\x0c\x1c",
        BOM,
        b":",
        "é😀".encode(),
    ]
)
values = st.one_of(
    special_values,
    special_values,
    special_values,
    st.binary(max_size=8),
    st.text(max_size=6).map(str.encode),
    st.from_regex(rb"\A[0-9]{1,25}\Z"),
)
names = st.sampled_from(
    [b"data"] * 4 + [b"event", b"id", b"id", b"retry", b"retry", b"", b"Data", b"foo", b"data "]
)
separators = st.sampled_from([b"", b":", b": ", b": ", b":  "])
line_ends = st.sampled_from(LINE_ENDS)
junk = st.one_of(st.binary(max_size=10), st.sampled_from([BOM, BOM[:1], BOM[:2], BOM[1:], b"\xbf"]))


retry_values = st.one_of(
    st.sampled_from(
        [
            *[b"", b"0", b"007", b"-1", b"+1", b" 1", b"1 ", b"1_000", b"1.5", b"0x1", b"1\x00"],
            *["\uff11\uff12".encode(), "²".encode(), "٣".encode(), b"1234567890" * 3],
        ]
    ),
    st.from_regex(rb"\A[0-9]{1,25}\Z"),
)
id_values = st.one_of(
    st.sampled_from([b"", b"1", b"2", b"\x00", b"a\x00b", b"\xff", "é".encode(), b" x", BOM]),
    values,
)


@st.composite
def field_lines(draw: Any) -> bytes:
    name = draw(names)
    value = {b"retry": retry_values, b"id": id_values}.get(name, values)
    return name + draw(separators) + draw(value) + draw(line_ends)


lines = st.one_of(
    field_lines(),
    field_lines(),
    field_lines(),
    field_lines(),
    st.builds(lambda v, e: b":" + v + e, values, line_ends),  # comments
    junk,  # anything at all, even without a line end
)


@st.composite
def blocks(draw: Any) -> bytes:
    """An event block: a few lines, usually ended by a blank line."""
    body = b"".join(draw(st.lists(lines, max_size=4)))
    end = draw(st.sampled_from([*LINE_ENDS, *LINE_ENDS, b""]))
    return body + end


@st.composite
def streams(draw: Any) -> bytes:
    start = draw(st.sampled_from([b"", b"", BOM, BOM, BOM[:1], BOM[:2]]))
    body = b"".join(draw(st.lists(blocks(), max_size=6)))
    tail = draw(st.sampled_from([b"", b"", b"data: tail", b"data: tail\n", b"id: tail\n"]))
    return start + body + tail


Chunk = Union[bytes, bytearray, memoryview]


@st.composite
def chunkings(draw: Any, stream: bytes) -> list[Chunk]:
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    bounds = [0, *cuts, len(stream)]
    chunks: list[Chunk] = []
    for a, b in zip(bounds, bounds[1:]):
        kind = draw(st.sampled_from(["bytes", "bytes", "bytearray", "memoryview"]))
        if kind == "bytearray":
            chunks.append(bytearray(stream[a:b]))
        elif kind == "memoryview":
            chunks.append(memoryview(stream)[a:b])
        else:
            chunks.append(stream[a:b])
    return chunks


@st.composite
def connections(draw: Any, max_connections: int = 3) -> list[tuple[bytes, list[Chunk]]]:
    """One to three connections, each a stream and its chunks; finish() ends each one."""
    out = []
    for _ in range(draw(st.integers(1, max_connections))):
        stream = draw(streams())
        out.append((stream, draw(chunkings(stream))))
    return out


class Step(NamedTuple):
    call: str
    events: tuple[Any, ...]
    raised: bool
    discarded: tuple[int, int] | None  # an EventTooLargeError's .discarded, .max_event_size
    last_event_id: str
    retry: int | None
    oversized: int
    comments: tuple[str, ...]  # take_comments_at() after the call: the texts
    comment_positions: tuple[int, ...]  # and their places among the call's events


def trace(parser: Any, plan: list[tuple[bytes, list[Chunk]]]) -> list[Step]:
    """Every call and the parser's state after it; an EventTooLargeError's events included."""
    steps = []
    for _, chunks in plan:
        for chunk in chunks:
            raised, discarded = False, None
            try:
                events = parser.feed(chunk)
            except EventTooLargeError as error:
                raised, events = True, error.events
                discarded = (error.discarded, error.max_event_size)
            state = (parser.last_event_id, parser.retry, parser.oversized)
            comments = split_comments(parser.take_comments_at())
            steps.append(
                Step("feed", tuple(map(as_tuple, events)), raised, discarded, *state, *comments)
            )
        finished = tuple(map(as_tuple, parser.finish()))
        state = (parser.last_event_id, parser.retry, parser.oversized)
        comments = split_comments(parser.take_comments_at())
        steps.append(Step("finish", finished, False, None, *state, *comments))
    return steps


def split_comments(
    comments: list[tuple[int, str]],
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    return tuple(text for _, text in comments), tuple(position for position, _ in comments)


def all_events(steps: list[Step]) -> list[Any]:
    return [event for step in steps for event in step.events]


def all_comments(steps: list[Step]) -> list[str]:
    return [text for step in steps for text in step.comments]


def wire_order(steps: list[Step]) -> list[tuple[str, Any]]:
    """Events and comments interleaved as each call's comment positions place them."""
    merged: list[tuple[str, Any]] = []
    for step in steps:
        comments = list(zip(step.comment_positions, step.comments))
        assert list(step.comment_positions) == sorted(step.comment_positions)
        assert all(0 <= position <= len(step.events) for position in step.comment_positions)
        for index, event in enumerate(step.events):
            while comments and comments[0][0] == index:
                merged.append(("comment", comments.pop(0)[1]))
            merged.append(("event", event))
        merged.extend(("comment", text) for _, text in comments)
    return merged


def compare(plan: list[tuple[bytes, list[Chunk]]], **kwargs: Any) -> list[Step]:
    rust = trace(fastsse.Parser(**kwargs), plan)
    pure = trace(PureParser(**kwargs), plan)
    assert rust == pure
    # Chunking changes when events come out (and which feed raises), never what comes out.
    whole_plan = [(stream, [stream]) for stream, _ in plan]
    for factory in (fastsse.Parser, PureParser):
        unchunked = trace(factory(**kwargs), whole_plan)
        assert all_events(unchunked) == all_events(rust)
        assert all_comments(unchunked) == all_comments(rust)
        # Positions place each comment among the events as on the wire, however it was split.
        assert wire_order(unchunked) == wire_order(rust)
        assert unchunked[-1][4:7] == rust[-1][4:7]  # last_event_id, retry, oversized
    return rust


def plan_of(*connection_chunks: list[bytes]) -> list[tuple[bytes, list[Chunk]]]:
    return [(b"".join(chunks), list(chunks)) for chunks in connection_chunks]


@SETTINGS
@given(
    plan=connections(),
    last_event_id=st.sampled_from(["", "42", "é"]),
    comments=st.booleans(),
    dataless_blocks=st.booleans(),
)
@example(plan_of([BOM[:1], BOM[1:] + b"data: a\r", b"\n\r", b"\n"]), "", True, False)
@example(
    plan_of([b"id: 1\ndata: a\n"], [BOM + b"data: b\n\n"], [BOM[:2], BOM[2:] + b"data: c\n\n"]),
    "",
    True,
    False,
)
@example(plan_of([b"id: a\x00b\ndata: x\n\nid: \x00\ndata: y\n\n"]), "42", True, False)
@example(
    plan_of(["retry: 5\nretry: \uff11\uff12\nretry:  7\ndata: x\n\n".encode()]), "", True, False
)
@example(plan_of([b"data: \xe2", b"\x82", b"\xac\xff\n", b"\n"]), "", True, False)
@example(plan_of([b"event: e\n\nid: 3\n\nid\ndata: x\n\n"]), "9", True, False)
@example(plan_of([b": a", b"\xc3", b"\xa9\r", b"\n:  b\r\r: c"], [b": d\n"]), "", True, False)
@example(plan_of([BOM[:2], BOM[2:] + b":x\ndata: y\n:z\n\n"]), "", True, False)
@example(
    plan_of([b"id: 1\nretry: 2\n", b"\nevent: x\nid: 1\n\nid: 2\n\ndata: y\n\n"]), "1", False, True
)
@example(plan_of([b"event: e\n\n: c\n\nid: a\x00\n\nretry: x\n\nid: 3\n"], [b"\n"]), "", True, True)
def test_rust_and_pure_agree_with_each_other_and_the_spec(
    plan, last_event_id, comments, dataless_blocks
):
    steps = compare(
        plan, last_event_id=last_event_id, comments=comments, dataless_blocks=dataless_blocks
    )
    assert all(step.oversized == 0 and not step.raised for step in steps)
    # An independent whole-stream reading of the spec, one connection at a time.
    expected_events: list[Any] = []
    expected_comments: list[str] = []
    resume_id, retry = last_event_id, None
    for stream, _ in plan:
        outcome = spec_oracle(stream, resume_id, dataless_blocks=dataless_blocks)
        expected_events.extend(outcome.events)
        expected_comments.extend(outcome.comments if comments else ())
        resume_id = outcome.last_event_id
        retry = outcome.retry if outcome.retry is not None else retry
    assert all_events(steps) == expected_events
    assert all_comments(steps) == expected_comments
    assert steps[-1].last_event_id == resume_id
    assert steps[-1].retry == retry


@FEWER
@given(
    plan=connections(),
    max_event_size=st.integers(1, 64),
    comments=st.booleans(),
    dataless_blocks=st.booleans(),
)
def test_small_limit_skip_mode(plan, max_event_size, comments, dataless_blocks):
    steps = compare(
        plan,
        max_event_size=max_event_size,
        on_oversize="skip",
        comments=comments,
        dataless_blocks=dataless_blocks,
    )
    assert not any(step.raised for step in steps)
    # A comment is cut to its first max_event_size bytes: U+FFFD may stand for one of them.
    assert all(len(comment.encode()) <= 3 * max_event_size for comment in all_comments(steps))
    if comments:
        uncut = compare(plan, comments=True)
        assert len(all_comments(steps)) == len(all_comments(uncut))


@FEWER
@given(plan=connections(), max_event_size=st.integers(1, 64), dataless_blocks=st.booleans())
# A dropped comment's rest is no field line that could overflow the limit.
@example(plan_of([b"abc\n:", b"d", b"ata\n\n"]), 3, False)
def test_small_limit_error_mode(plan, max_event_size, dataless_blocks):
    steps = compare(
        plan, max_event_size=max_event_size, on_oversize="error", dataless_blocks=dataless_blocks
    )
    # Exactly the feeds that discarded an event raised, each naming how many it discarded.
    previous = 0
    for step in steps:
        grew = step.oversized - previous
        assert step.raised == (grew > 0)
        assert step.discarded == ((grew, max_event_size) if grew else None)
        previous = step.oversized


@FEWER
@given(plan=connections(max_connections=1), max_event_size=st.integers(1, 64))
def test_skip_and_error_modes_deliver_the_same_events(plan, max_event_size):
    skip = trace(fastsse.Parser(max_event_size=max_event_size, on_oversize="skip"), plan)
    error = trace(fastsse.Parser(max_event_size=max_event_size, on_oversize="error"), plan)
    assert all_events(skip) == all_events(error)
    assert [step[4:] for step in skip] == [step[4:] for step in error]
