"""Parser.take_comments_at(): each comment with its place among the events of its call, so that
a driver hands comments and events to the caller in wire order (issue 15, defect 6)."""

from __future__ import annotations

from typing import Any

import pytest
from fastsse import EventTooLargeError
from support.parser_cases import BOM, PARSERS

parsers = pytest.mark.parametrize("factory", PARSERS)


def in_wire_order(events: list[Any], comments: list[tuple[int, str]]) -> list[str]:
    """One feed()'s events and take_comments_at(), merged as a driver would: each comment
    goes before the event at its position."""
    merged: list[str] = []
    pending = list(comments)
    for index, event in enumerate(events):
        while pending and pending[0][0] == index:
            merged.append(f"comment {pending.pop(0)[1]}")
        merged.append(f"event {event.data}")
    merged.extend(f"comment {text}" for _, text in pending)
    return merged


@parsers
def test_comment_before_event(factory):
    """sse-contract-tests "comment before event"."""
    parser = factory(comments=True)
    events = parser.feed(b":Hello\ndata: Hi\n\n")
    assert parser.take_comments_at() == [(0, "Hello")]
    assert in_wire_order(events, []) == ["event Hi"]


@parsers
def test_comment_after_event(factory):
    parser = factory(comments=True)
    events = parser.feed(b"data: Hi\n\n:Bye\n")
    assert parser.take_comments_at() == [(1, "Bye")]
    assert len(events) == 1


@parsers
@pytest.mark.parametrize("split", range(len(BOM) + 2))
def test_bom_then_comment_at_start_of_stream(factory, split):
    """sse-contract-tests "BOM with comment at start", the BOM split anywhere."""
    stream = BOM + b": hi\ndata: x\n\n"
    parser = factory(comments=True)
    first = parser.feed(stream[:split])
    assert first == []
    assert parser.take_comments_at() == []
    events = parser.feed(stream[split:])
    assert in_wire_order(events, parser.take_comments_at()) == ["comment hi", "event x"]


@parsers
def test_comments_between_the_events_of_one_chunk(factory):
    parser = factory(comments=True)
    chunk = b": a\ndata: 1\n\n: b\n: c\ndata: 2\n\ndata: 3\n: inside\n\n: d\n"
    events = parser.feed(chunk)
    at = parser.take_comments_at()
    assert at == [(0, "a"), (1, "b"), (1, "c"), (2, "inside"), (3, "d")]
    assert in_wire_order(events, at) == [
        "comment a",
        "event 1",
        "comment b",
        "comment c",
        "event 2",
        "comment inside",  # a comment inside an event block comes before the event it is in
        "event 3",
        "comment d",
    ]
    assert parser.take_comments_at() == []


@parsers
def test_positions_count_from_each_feed(factory):
    """Positions refer to the list of the call that received the comment; taking after several
    feeds keeps each comment's own position."""
    parser = factory(comments=True)
    assert len(parser.feed(b"data: 1\n\ndata: 2\n\n: x\n")) == 2
    assert len(parser.feed(b": y\ndata: 3\n\n")) == 1
    assert parser.take_comments_at() == [(2, "x"), (0, "y")]


@parsers
def test_a_comment_split_across_chunks_belongs_to_the_chunk_that_ends_it(factory):
    parser = factory(comments=True)
    first = parser.feed(b"data: 1\n\n: hel")
    assert len(first) == 1
    assert parser.take_comments_at() == []
    second = parser.feed(b"lo\r")
    assert second == []
    assert parser.take_comments_at() == [(0, "hello")]
    third = parser.feed(b"\ndata: 2\n\n")  # the LF of the CRLF is not a blank line
    assert [event.data for event in third] == ["2"]
    assert parser.take_comments_at() == []


@parsers
def test_take_comments_and_take_comments_at_share_one_buffer(factory):
    parser = factory(comments=True)
    parser.feed(b": a\ndata: 1\n\n: b\n")
    assert parser.take_comments() == ["a", "b"]
    assert parser.take_comments_at() == []
    parser.feed(b": c\n")
    assert parser.take_comments_at() == [(0, "c")]
    assert parser.take_comments() == []


@parsers
def test_positions_through_event_too_large_error(factory):
    """The positions index the error's .events, which holds the chunk's completed events."""
    parser = factory(comments=True, max_event_size=8)
    chunk = b": a\ndata: 1\n\n: b\ndata: far too long\n\n: c\ndata: 2\n\n: d\n"
    with pytest.raises(EventTooLargeError) as info:
        parser.feed(chunk)
    events = info.value.events
    at = parser.take_comments_at()
    assert at == [(0, "a"), (1, "b"), (1, "c"), (2, "d")]
    assert in_wire_order(events, at) == [
        "comment a",
        "event 1",
        "comment b",
        "comment c",
        "event 2",
        "comment d",
    ]


@parsers
def test_without_comments_nothing_is_kept(factory):
    parser = factory()
    assert len(parser.feed(b": a\ndata: 1\n\n: b\n")) == 1
    assert parser.take_comments_at() == []


@parsers
def test_finish_delivers_no_unterminated_comment(factory):
    parser = factory(comments=True)
    parser.feed(b"data: 1\n\n: cut")
    parser.take_comments_at()
    assert parser.finish() == []
    assert parser.take_comments_at() == []
    events = parser.feed(b": new\ndata: 2\n\n")
    assert in_wire_order(events, parser.take_comments_at()) == ["comment new", "event 2"]
