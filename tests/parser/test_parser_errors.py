"""No event is lost on an error inside a chunk; Event holds exact types; argument ranges.

Every error met while a chunk's events are built is raised only once the whole chunk is
parsed, carrying the events it completed in ``.events``, as ``EventTooLargeError`` does; both
parsers behave alike.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from typing import Any

import fastsse
import pytest
from fastsse import Event
from fastsse._pure import PureParser
from support.parser_cases import PARSERS

parsers = pytest.mark.parametrize("factory", PARSERS)


@pytest.fixture
def int_digits_640() -> Any:
    """The lowest int/str conversion limit a process can set, restored afterwards."""
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    yield
    sys.set_int_max_str_digits(before)


@parsers
def test_retry_follows_a_lowered_process_int_limit(factory, int_digits_640):
    """A 1,000-digit retry after sys.set_int_max_str_digits(640) used to raise in the middle of
    building the chunk's events, losing all of them; it saturates at the process's limit now."""
    parser = factory()
    events = parser.feed(
        b"data: before\n\nretry: "
        + b"3" * 640
        + b"\ndata: at the limit\n\nretry: "
        + b"1" * 1000
        + b"\ndata: past it\n\ndata: after\n\n"
    )
    assert [e.data for e in events] == ["before", "at the limit", "past it", "after"]
    assert events[1].retry == int("3" * 640)
    assert events[2].retry == 10**640 - 1
    assert events[3].retry is None
    assert parser.retry == 10**640 - 1


def test_both_parsers_saturate_retry_alike_under_a_lowered_limit(int_digits_640):
    stream = b"".join(b"retry: %s\ndata: %d\n\n" % (b"9" * n, n) for n in (639, 640, 641, 5000))
    rust, pure = fastsse.Parser().feed(stream), PureParser().feed(stream)
    assert rust == pure
    assert [e.retry for e in rust] == [10**639 - 1] + [10**640 - 1] * 3


# An allocation that fails while an event is built: a chunk whose middle event is too large to
# become a str under an address-space limit set after the chunk itself was allocated (the Rust
# parser reads the data from the chunk; it copies nothing). Run in a child process so that the
# limit binds nothing else.
_ALLOCATION_FAILURE = textwrap.dedent(
    """
    import resource, sys
    import fastsse

    size = 64 * 1024 * 1024
    parser = fastsse.Parser(last_event_id="0", max_event_size=2 * size)
    chunk = (
        b"id: 1\\ndata: before\\n\\n"
        + b"id: 2\\ndata: " + b"x" * size + b"\\n\\n"
        + b"id: 3\\ndata: after\\n\\ndata: partial"
    )
    with open("/proc/self/statm") as statm:
        in_use = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (in_use + size // 2, resource.RLIM_INFINITY))
    try:
        parser.feed(chunk)
    except MemoryError as error:
        print(type(error).__name__, [(e.id, e.data) for e in error.events])
    else:
        print("no error")
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    # The parser went on past the failed event: its state is the whole chunk's.
    print(parser.last_event_id, [(e.id, e.data) for e in parser.feed(b"\\n\\n")])
    """
)


def test_an_allocation_failure_carries_the_chunks_other_events():
    result = subprocess.run(
        [sys.executable, "-c", _ALLOCATION_FAILURE],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.splitlines() == [
        "MemoryError [('1', 'before'), ('3', 'after')]",
        "3 [('3', 'partial')]",
    ]


def test_pure_parser_error_building_an_event_carries_the_others(monkeypatch):
    """The pure parser agrees: whatever fails while an event is built is raised after the chunk
    is parsed whole, carrying the events built (the Rust parser's only such failures are
    allocations: see the test above)."""
    real_event = fastsse._pure.Event

    def failing_event(**fields: Any) -> Event:
        if fields["data"] == "boom":
            raise ValueError("cannot build this one")
        return real_event(**fields)

    monkeypatch.setattr(fastsse._pure, "Event", failing_event)
    parser = PureParser()
    with pytest.raises(ValueError, match="cannot build") as raised:
        parser.feed(b"data: a\n\ndata: boom\n\nid: 7\ndata: b\n\ndata: partial")
    assert raised.value.events == [Event(data="a"), Event(data="b", id="7")]
    assert parser.last_event_id == "7"
    assert parser.feed(b"\n\n") == [Event(data="partial", id="7")]


@parsers
def test_an_oversized_event_and_events_around_it(factory):
    """EventTooLargeError carries the events too (its own tests are in test_parser_limits)."""
    with pytest.raises(fastsse.EventTooLargeError) as raised:
        factory(max_event_size=8).feed(b"data: a\n\ndata: too large\n\ndata: b\n\n")
    assert raised.value.events == [Event(data="a"), Event(data="b")]


# --- Event holds exact types -------------------------------------------------------------------


class LoudStr(str):
    """A str subclass whose methods must not be called when an Event copies it."""

    def __str__(self) -> str:
        raise AssertionError("__str__ called")

    def __len__(self) -> int:
        raise AssertionError("__len__ called")


class LoudInt(int):
    def __int__(self) -> int:
        raise AssertionError("__int__ called")

    def __index__(self) -> int:
        raise AssertionError("__index__ called")


def test_event_copies_str_and_int_subclasses_to_exact_types():
    event = Event(event=LoudStr("update"), data=LoudStr("d"), id=LoudStr("7"), retry=LoudInt(5))
    assert [type(value) for value in (event.event, event.data, event.id, event.retry)] == [
        str,
        str,
        str,
        int,
    ]
    assert (event.event, event.data, event.id, event.retry) == ("update", "d", "7", 5)
    with pytest.raises(TypeError, match="'retry' must be int or None, not bool"):
        Event(retry=True)  # a bool is no number of milliseconds, though an int subclass
    assert Event(event=LoudStr("")).event == "message"


@pytest.mark.parametrize(
    "fields",
    [{"event": 1}, {"data": b"x"}, {"id": 7}, {"retry": "5"}, {"retry": 1.5}],
    ids=["event-int", "data-bytes", "id-int", "retry-str", "retry-float"],
)
def test_event_rejects_other_types(fields):
    with pytest.raises(TypeError):
        Event(**fields)


@parsers
def test_parsed_events_are_not_tracked_by_the_garbage_collector(factory):
    events = factory().feed(
        b"".join(b"id: %d\nretry: 9\ndata: %d\n\n" % (i, i) for i in range(3000))
    )
    assert len(events) == 3000
    if factory is fastsse.Parser:
        assert not any(gc.is_tracked(event) for event in events)
    assert all(
        (type(e.event), type(e.data), type(e.id), type(e.retry)) == (str, str, str, int)
        for e in events
    )


# --- the same arguments in both parsers --------------------------------------------------------


@parsers
@pytest.mark.parametrize("size", [1, 2**31, sys.maxsize])
def test_max_event_size_accepts_1_to_maxsize(factory, size):
    assert factory(max_event_size=size).max_event_size == size


@parsers
@pytest.mark.parametrize("size", [0, -1, sys.maxsize + 1, 2**64])
def test_max_event_size_outside_1_to_maxsize_is_a_value_error(factory, size):
    with pytest.raises(ValueError, match="max_event_size must be a positive number of bytes"):
        factory(max_event_size=size)


@parsers
@pytest.mark.parametrize("size", [True, 1.0, "16"])
def test_max_event_size_of_another_type_is_a_type_error(factory, size):
    with pytest.raises(TypeError, match="max_event_size must be an int"):
        factory(max_event_size=size)


# --- cheap reads --------------------------------------------------------------------------------


def test_event_fields_are_plain_members():
    """Python reads each field straight from the object (a member), not through a getter call:
    retry included, which a getter made 2.5x slower to read."""
    assert {
        name: type(vars(Event)[name]).__name__ for name in ("event", "data", "id", "retry")
    } == dict.fromkeys(("event", "data", "id", "retry"), "member_descriptor")
    assert Event(data="x").retry is None


def test_parser_retry_and_last_event_id_are_converted_once():
    parser = fastsse.Parser()
    parser.feed(b"id: 12345678901234567890\nretry: 123456789012345678901234567890\ndata: x\n\n")
    assert parser.retry is parser.retry
    assert parser.retry == 123456789012345678901234567890
    assert parser.last_event_id is parser.last_event_id
    parser.feed(b"retry: 7\n\n")
    assert parser.retry == 7
