"""Spec vectors through both parsers at every chunking; the Event and Parser APIs.

Expected values are written by hand from the WHATWG spec (see ``parser_cases``).
"""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
import textwrap

import fastsse
import pytest
from fastsse import DEFAULT_MAX_EVENT_SIZE, Event, Parser, ServerSentEvent
from fastsse._pure import PureParser
from support.parser_cases import (
    BOM,
    PARSERS,
    RANDOM_SEEDS,
    VECTORS,
    as_bytearrays,
    as_memoryviews,
    as_tuple,
    ev,
    expected,
    one_byte,
    random_split,
    run,
    split_at,
    whole,
)

vectors = pytest.mark.parametrize("vector", [pytest.param(v, id=v.name) for v in VECTORS])
parsers = pytest.mark.parametrize("factory", PARSERS)


# --- every vector, every chunking, both parsers -----------------------------------------------


@parsers
@vectors
def test_whole(factory, vector):
    assert run(factory, whole(vector.stream)) == expected(vector)


@parsers
@vectors
def test_split_at_every_position(factory, vector):
    for position in range(len(vector.stream) + 1):
        outcome = run(factory, split_at(vector.stream, position))
        assert outcome == expected(vector), f"split at byte {position}"


@parsers
@vectors
def test_one_byte_chunks(factory, vector):
    assert run(factory, one_byte(vector.stream)) == expected(vector)


@parsers
@vectors
def test_random_splits(factory, vector):
    for seed in RANDOM_SEEDS:
        chunks = random_split(vector.stream, seed)
        assert b"".join(chunks) == vector.stream
        assert run(factory, chunks) == expected(vector), f"seed {seed}: {chunks!r}"


@parsers
@vectors
def test_bytearray_and_memoryview_chunks(factory, vector):
    for seed in RANDOM_SEEDS:
        assert run(factory, as_bytearrays(vector.stream, seed)) == expected(vector)
        assert run(factory, as_memoryviews(vector.stream, seed)) == expected(vector)


@parsers
def test_events_come_out_with_the_chunk_that_completes_them(factory):
    parser = factory()
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"\ndata: b\n\ndata: c\n") == [Event(data="a"), Event(data="b")]
    assert parser.feed(b"\r") == [Event(data="c")]  # a CR ends the blank line at once
    assert parser.feed(b"\n") == []  # the LF of that CRLF, not another blank line
    assert parser.feed(b"data: d\r\n\r\n") == [Event(data="d")]


@parsers
def test_cr_at_chunk_end_then_lf_is_one_line_end(factory):
    parser = factory()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\ndata: b\r") == []
    assert parser.feed(b"\n\r") == [Event(data="a\nb")]
    assert parser.feed(b"\n") == []
    assert parser.feed(b"data: c\n\n") == [Event(data="c")]


@parsers
def test_bom_split_across_chunks_is_stripped(factory):
    for cut in (1, 2):
        parser = factory()
        assert parser.feed(BOM[:cut]) == []
        assert parser.feed(BOM[cut:]) == []
        assert parser.feed(b"data: x\n\n") == [Event(data="x")]
    parser = factory()
    for byte in BOM:
        assert parser.feed(bytes([byte])) == []
    assert parser.feed(b"") == []
    assert parser.feed(BOM + b"data: x\n\n") == []  # a second BOM is not stripped
    assert parser.feed(b"data: y\n\n") == [Event(data="y")]


@parsers
def test_retry_beyond_python_int_str_limit(factory):
    """Retry is the spec's "that integer", exact up to RETRY_MAX_DIGITS (4300, CPython's int/str
    conversion limit); longer values saturate at 10**4300 - 1 instead of costing quadratic time.
    Either way feed() never raises and loses nothing."""
    assert fastsse._fastsse.RETRY_MAX_DIGITS == 4300
    longest_exact = int("7" * 4300)
    parser = factory()
    events = parser.feed(
        b"data: before\n\nretry: 000"
        + b"7" * 4300
        + b"\ndata: x\n\nretry: "
        + b"1" * 5000
        + b"\ndata: after\n\n"
    )
    assert [e.data for e in events] == ["before", "x", "after"]
    assert events[1].retry == longest_exact
    assert events[2].retry == 10**4300 - 1
    assert parser.retry == 10**4300 - 1


# --- parser state across finish() -------------------------------------------------------------


@parsers
def test_finish_discards_unterminated_event(factory):
    parser = factory()
    assert parser.feed(b"event: e\nid: 2\ndata: a\n") == []
    assert parser.finish() == []
    assert parser.last_event_id == ""
    # Nothing of the unterminated event leaks into the next connection.
    assert parser.feed(b"data: b\n\n") == [Event(data="b")]


@parsers
def test_finish_drops_a_partial_line(factory):
    parser = factory()
    assert parser.feed(b"dat") == []
    assert parser.finish() == []
    assert parser.feed(b"a: x\n\n") == []  # field "a", not "data"
    assert parser.feed(b"data: y\n\n") == [Event(data="y")]


@parsers
def test_bom_stripped_again_after_finish(factory):
    parser = factory()
    assert parser.feed(BOM + b"data: a\n\n") == [Event(data="a")]
    assert parser.finish() == []
    assert parser.feed(BOM) == []
    assert parser.feed(b"data: b\n\n") == [Event(data="b")]
    assert parser.finish() == []
    assert parser.feed(BOM[:2]) == []
    assert parser.feed(BOM[2:] + b"data: c\n\n") == [Event(data="c")]


@parsers
def test_partial_bom_does_not_survive_finish(factory):
    parser = factory()
    assert parser.feed(BOM[:2]) == []
    assert parser.finish() == []
    # The new connection starts with 0xBF: not a BOM, so the first line is an unknown field.
    assert parser.feed(BOM[2:] + b"data: x\n\ndata: y\n\n") == [Event(data="y")]


@parsers
def test_last_event_id_and_retry_kept_across_finish(factory):
    parser = factory()
    assert parser.feed(b"id: 1\nretry: 250\ndata: a\n\n") == [Event(data="a", id="1", retry=250)]
    assert parser.finish() == []
    assert (parser.last_event_id, parser.retry) == ("1", 250)
    assert parser.feed(b"data: b\n\n") == [Event(data="b", id="1")]


@parsers
def test_id_of_unterminated_event_not_committed(factory):
    parser = factory()
    assert parser.feed(b"id: 1\ndata: a\n\nid: 2\ndata: b\n") == [Event(data="a", id="1")]
    assert parser.last_event_id == "1"
    assert parser.finish() == []
    assert parser.last_event_id == "1"
    assert parser.feed(b"data: c\n\n") == [Event(data="c", id="1")]
    assert parser.last_event_id == "1"


@parsers
def test_finish_twice_and_on_fresh_parser(factory):
    parser = factory()
    assert parser.finish() == []
    assert parser.finish() == []
    assert parser.feed(b"data: x\n\n") == [Event(data="x")]


# --- parser properties ------------------------------------------------------------------------


@parsers
def test_last_event_id_from_constructor(factory):
    parser = factory(last_event_id="résumé-42")
    assert parser.last_event_id == "résumé-42"
    assert parser.feed(b"data: a\n\n") == [Event(data="a", id="résumé-42")]
    assert parser.feed(b"id: 5\n") == []
    assert parser.finish() == []
    assert parser.last_event_id == "résumé-42"
    assert parser.feed(b"data: b\n\n") == [Event(data="b", id="résumé-42")]
    assert parser.feed(b"id\n\n") == []
    assert parser.last_event_id == ""


@parsers
def test_default_properties(factory):
    parser = factory()
    assert parser.last_event_id == ""
    assert parser.retry is None
    assert parser.oversized == 0
    assert parser.max_event_size == DEFAULT_MAX_EVENT_SIZE == 16 * 1024 * 1024
    assert factory(max_event_size=123).max_event_size == 123


@parsers
def test_retry_is_a_python_int_of_any_size(factory):
    parser = factory()
    big = 2**200 + 7
    (event,) = parser.feed(b"retry: " + str(big).encode() + b"\ndata: x\n\n")
    assert type(event.retry) is int
    assert type(parser.retry) is int
    assert event.retry == parser.retry == big
    parser.feed(b"retry: 18446744073709551616\n")  # 2**64
    assert parser.retry == 2**64
    parser.feed(b"retry: 18446744073709551615\n")  # 2**64 - 1
    assert parser.retry == 2**64 - 1
    parser.feed(b"retry: 7\n")
    assert parser.retry == 7


@parsers
def test_parser_arguments_are_keyword_only(factory):
    with pytest.raises(TypeError):
        factory("id")


@parsers
def test_events_are_event_instances(factory):
    (event,) = factory().feed(b"event: e\nid: 1\nretry: 3\ndata: x\n\n")
    assert type(event) is Event
    assert isinstance(event.event, str)
    assert isinstance(event.data, str)
    assert isinstance(event.id, str)
    assert as_tuple(event) == ev("x", "e", "1", 3)


# --- Event API --------------------------------------------------------------------------------


def test_server_sent_event_is_event():
    assert ServerSentEvent is Event
    assert fastsse.ServerSentEvent is fastsse.Event


def test_event_defaults():
    event = ServerSentEvent()
    assert (event.event, event.data, event.id, event.retry) == ("message", "", "", None)


def test_event_construction_like_httpx_sse():
    positional = Event("update", "payload", "7", 1500)
    keyword = Event(event="update", data="payload", id="7", retry=1500)
    assert positional == keyword
    assert as_tuple(keyword) == ("update", "payload", "7", 1500)
    assert Event(data="x") == Event("message", "x", "", None)
    assert Event(event="").event == "message"  # httpx-sse: a falsy event means "message"
    assert Event(event=None, data=None, id=None, retry=None) == Event()


def test_event_is_immutable():
    event = Event("e", "d", "i", 1)
    for name, value in [("event", "x"), ("data", "x"), ("id", "x"), ("retry", 2)]:
        with pytest.raises(AttributeError):
            setattr(event, name, value)
        with pytest.raises(AttributeError):
            delattr(event, name)
    with pytest.raises(AttributeError):
        event.other = 1  # type: ignore[attr-defined]
    assert as_tuple(event) == ("e", "d", "i", 1)


def test_event_equality_and_hash():
    a = Event("e", "d", "i", 1)
    b = Event("e", "d", "i", 1)
    assert a == b
    assert (a != b) is False
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    for other in (Event("x", "d", "i", 1), Event("e", "x", "i", 1), Event("e", "d", "x", 1)):
        assert a != other
    assert a != Event("e", "d", "i", None)
    assert a != Event("e", "d", "i", 2)
    assert a != ("e", "d", "i", 1)
    assert a != "d"
    assert len({Event(data=str(i)) for i in range(10)}) == 10


def test_event_repr_is_readable():
    text = repr(Event("update", "hello\nworld", "7", 1500))
    assert text.startswith("Event(")
    for part in ("event='update'", "data='hello\\nworld'", "id='7'", "retry=1500"):
        assert part in text
    assert "data='x'" in repr(Event(data="x"))


def test_event_pickle_and_copy_round_trip():
    events = [Event(), Event("e", "d\x00\u2028", "é", 5), Event(data="x", retry=10**40)]
    for event in events:
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            clone = pickle.loads(pickle.dumps(event, protocol=protocol))
            assert clone == event
            assert type(clone) is Event
            assert as_tuple(clone) == as_tuple(event)
        assert copy.copy(event) == event
        assert copy.deepcopy(event) == event


@parsers
def test_parsed_events_pickle(factory):
    events = factory().feed(b"event: e\nid: 1\nretry: 9\ndata: x\n\n")
    assert pickle.loads(pickle.dumps(events)) == events


def test_event_json():
    assert Event(data='{"a": [1, 2, {"b": null}], "c": "é"}').json() == {
        "a": [1, 2, {"b": None}],
        "c": "é",
    }
    assert Event(data="[]").json() == []
    assert Event(data="3").json() == 3
    with pytest.raises(json.JSONDecodeError):
        Event(data="{not json").json()
    with pytest.raises(json.JSONDecodeError):
        Event(data="").json()


def test_event_json_uses_orjson_when_installed():
    orjson = pytest.importorskip("orjson")
    # orjson rejects NaN, the json module accepts it: this tells the two apart.
    with pytest.raises(orjson.JSONDecodeError):
        Event(data="NaN").json()


def test_event_json_falls_back_to_json_without_orjson():
    script = textwrap.dedent(
        """
        import sys
        sys.modules["orjson"] = None  # makes `import orjson` fail
        from fastsse import Event
        value = Event(data="NaN").json()
        assert value != value, value
        assert Event(data='{"a": [1]}').json() == {"a": [1]}
        try:
            Event(data="{").json()
        except ValueError:
            print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_pure_parser_builds_the_same_event_class():
    (event,) = PureParser().feed(b"data: x\n\n")
    assert type(event) is Event
    assert event == Parser().feed(b"data: x\n\n")[0]
