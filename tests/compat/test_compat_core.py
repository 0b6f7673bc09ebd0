"""The httpx-sse layer drives fastsse's stream core (``fastsse.protocol.StreamMachine``): its
bytes go through the machine's ``feed()``, with the parser options it needs (no bound with
``max_event_size=None``, ``dataless_blocks``), and an oversized event ends it with the error of
the API in use, after the events its chunk completed."""

from __future__ import annotations

import sys
from types import ModuleType

import fastsse
import httpx
import pytest
from fastsse import protocol
from support.compat import HTTPX2, response


@pytest.mark.parametrize("http", [httpx, *HTTPX2], ids=lambda http: http.__name__)
def test_every_chunk_goes_through_the_stream_core(
    http: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    machines: list[protocol.StreamMachine] = []
    fed: list[bytes] = []
    feed = protocol.StreamMachine.feed

    def spy(self: protocol.StreamMachine, chunk: bytes) -> list[fastsse.Event]:
        if self not in machines:
            machines.append(self)
        fed.append(chunk)
        return feed(self, chunk)

    monkeypatch.setattr(protocol.StreamMachine, "feed", spy)
    chunks = [b"id: 1\n\n", b"data: a\n", b"\ndata: b\n\n"]
    events = list(fastsse.EventSource(response(http, chunks), max_event_size=None).iter_sse())
    assert [(e.data, e.id) for e in events] == [("", "1"), ("a", "1"), ("b", "1")]
    assert fed == chunks
    (machine,) = machines
    assert machine.reconnect is False
    assert machine.parser.dataless_blocks is True
    assert machine.parser.max_event_size == sys.maxsize
    assert machine.stats.events == 3
    assert machine.stats.bytes == sum(map(len, chunks))


def test_an_oversized_event_raises_after_the_events_of_its_chunk() -> None:
    chunks = [b"data: a\n\n", b"data: " + b"x" * 64 + b"\n\ndata: b\n\n", b"data: c\n\n"]
    seen: list[str] = []
    source = fastsse.EventSource(response(httpx, chunks), max_event_size=32)
    with pytest.raises(fastsse.EventTooLargeError) as info:
        seen.extend(e.data for e in source.iter_sse())
    assert seen == ["a", "b"]
    assert info.value.max_event_size == 32
    assert [e.data for e in info.value.events] == ["b"]
    assert "max_event_size= to EventSource" in str(info.value)
    assert "on_oversize" not in str(info.value)  # no option of EventSource


@pytest.mark.skipif(not HTTPX2, reason="httpx2 needs Python >= 3.11")
def test_an_oversized_event_is_httpx2_s_error_when_iterated_directly() -> None:
    (httpx2,) = HTTPX2
    chunks = [b"data: a\n\n", b"data: " + b"x" * 64 + b"\n\ndata: b\n\n"]
    seen: list[str] = []
    with pytest.raises(
        httpx2.SSEError, match=r"^Server-sent event exceeded the 32 byte limit\.$"
    ) as info:
        seen.extend(e.data for e in fastsse.EventSource(response(httpx2, chunks), 32))
    assert seen == ["a", "b"]
    assert isinstance(info.value, fastsse.SSEError)
    assert isinstance(info.value.__cause__, fastsse.EventTooLargeError)


def test_stream_machine_keeps_the_spec_s_rule_by_default() -> None:
    assert protocol.StreamMachine("http://127.0.0.1/").parser.dataless_blocks is False
    machine = protocol.StreamMachine("http://127.0.0.1/", dataless_blocks=True)
    assert machine.feed(b"id: evt-1\nretry: 0\n\n") == [fastsse.Event(data="", id="evt-1", retry=0)]
    # A parser made again (resume_from) keeps the option.
    machine.resume_from("7")
    assert machine.parser.dataless_blocks is True
