"""``dataless_blocks=True``: a block that sets an ``id:`` or ``retry:`` without data is an event
with empty data (what httpx-sse and httpx2 do, and what the compatibility layers need), through
both parsers at every chunking; off by default, where the spec's rule holds.

Expected values are written by hand (see ``parser_cases.DATALESS_VECTORS``).
"""

from __future__ import annotations

import fastsse
import pytest
from fastsse import Event
from fastsse._pure import PureParser
from support.parser_cases import (
    DATALESS_VECTORS,
    PARSERS,
    Outcome,
    expected,
    one_byte,
    run,
    spec_oracle,
    whole,
)

vectors = pytest.mark.parametrize("vector", [pytest.param(v, id=v.name) for v in DATALESS_VECTORS])
parsers = pytest.mark.parametrize("factory", PARSERS)


def two_and_three_pieces(stream: bytes) -> list[list[bytes]]:
    """``stream`` cut in two at every place, and in three at every pair of places."""
    out = []
    for i in range(len(stream) + 1):
        out.append([stream[:i], stream[i:]])
        for j in range(i, len(stream) + 1):
            out.append([stream[:i], stream[i:j], stream[j:]])
    return out


@parsers
@vectors
def test_every_chunking_gives_the_vectors_events(factory, vector):
    assert run(factory, whole(vector.stream), dataless_blocks=True) == expected(vector)
    assert run(factory, one_byte(vector.stream), dataless_blocks=True) == expected(vector)
    for chunks in two_and_three_pieces(vector.stream):
        outcome = run(factory, chunks, dataless_blocks=True)
        assert outcome == expected(vector), chunks


@vectors
def test_the_oracle_reads_the_vectors_alike(vector):
    assert spec_oracle(vector.stream, dataless_blocks=True)[:3] == expected(vector)[:3]


@parsers
@vectors
def test_off_by_default_the_spec_s_rule_holds(factory, vector):
    assert factory().dataless_blocks is False
    assert factory(dataless_blocks=True).dataless_blocks is True
    spec = Outcome(*spec_oracle(vector.stream)[:3])  # the comments aside
    assert run(factory, whole(vector.stream)) == spec
    assert run(factory, whole(vector.stream), dataless_blocks=False) == spec
    # Only the blocks without data differ: the events with data are the same.
    assert spec.events == [event for event in vector.events if event[1]]


@parsers
def test_the_priming_block_comes_out_with_the_chunk_that_ends_it(factory):
    parser = factory(dataless_blocks=True)
    assert parser.feed(b"id: evt-1\nretry: 0\n") == []
    assert parser.pending
    assert parser.feed(b"\nid: evt-2\ndata: x\n\n") == [
        Event(data="", id="evt-1", retry=0),
        Event(data="x", id="evt-2"),
    ]
    assert parser.feed(b"id: evt-2\n\n") == [Event(data="", id="evt-2")]


@parsers
def test_an_oversized_block_without_data_is_discarded(factory):
    parser = factory(dataless_blocks=True, max_event_size=8, on_oversize="skip")
    assert parser.feed(b"id: 123456789\n\nid: 1\n\n") == [Event(data="", id="1")]
    assert parser.oversized == 1


@parsers
def test_a_value_that_is_not_a_bool_is_refused(factory):
    for value in (1, "yes", None):
        with pytest.raises(TypeError, match="dataless_blocks must be True or False, not "):
            factory(dataless_blocks=value)


def test_both_parsers_refuse_alike():
    messages = []
    for factory in (fastsse.Parser, PureParser):
        with pytest.raises(TypeError) as info:
            factory(dataless_blocks=0)
        messages.append(str(info.value))
    assert messages[0] == messages[1] == "dataless_blocks must be True or False, not int"
