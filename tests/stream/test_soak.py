"""Soak without leaks, at sizes the suite can afford (benches/soak.py runs the full sizes: 1,000
reconnects, 10 million events): one stream reconnecting hundreds of times keeps its file
descriptors, threads and asyncio tasks flat and gives them all back when closed; millions of
events through one Parser, and hundreds of thousands through one stream, keep RSS flat after
warm-up. A leak of one descriptor per connection, or of a few bytes per event, fails them."""

from __future__ import annotations

import pytest
from fastsse.testing import SSEServer
from support import soak as soak_helpers
from support.streams import KINDS

RECONNECTS = 300
PARSER_EVENTS = 2_000_000
STREAM_EVENTS = 300_000
#: RSS may rise this much after warm-up (allocator noise); a leak of 16 bytes per event of the
#: stream runs, or of 2 bytes per event of the parser run, is more.
MAX_RSS_GROWTH = 4 * 1024 * 1024


@pytest.mark.parametrize("kind", KINDS)
def test_reconnects_leak_no_file_descriptors_threads_or_tasks(server: SSEServer, kind: str):
    soak = {"sync": soak_helpers.reconnect_soak_sync, "async": soak_helpers.reconnect_soak_async}
    figures = soak[kind](server, RECONNECTS)
    assert (figures.events, figures.reconnects) == (RECONNECTS + 1, RECONNECTS)
    # Mid-stream: the connection in use, and the server's side of it or of the one before.
    assert figures.fds["end"] <= figures.fds["warm"] + 2, figures
    assert figures.threads["end"] == figures.threads["warm"], figures
    assert figures.tasks.get("end") == figures.tasks.get("warm"), figures
    # Closed: everything given back.
    assert figures.fds["closed"] == figures.fds["start"], figures
    assert figures.threads["closed"] == figures.threads["start"], figures
    assert figures.tasks.get("closed") == figures.tasks.get("start"), figures
    assert (kind == "async") == bool(figures.tasks)


def test_millions_of_events_through_one_parser_keep_rss_flat():
    figures = soak_helpers.parser_soak(PARSER_EVENTS)
    assert figures.events >= PARSER_EVENTS * 0.95
    assert figures.samples >= 30
    assert figures.growth < MAX_RSS_GROWTH, figures


@pytest.mark.parametrize("kind", KINDS)
def test_hundreds_of_thousands_of_events_through_one_stream_keep_rss_flat(
    server: SSEServer, kind: str
):
    figures = soak_helpers.stream_soak(server, STREAM_EVENTS, kind)
    assert figures.events >= STREAM_EVENTS * 0.95
    assert figures.samples >= 30
    assert figures.growth < MAX_RSS_GROWTH, figures
