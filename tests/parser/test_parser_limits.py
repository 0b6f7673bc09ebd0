"""Memory bound, oversized events, bad arguments and threads."""

from __future__ import annotations

import gc
import itertools
import sys
import threading
from typing import Any, Callable

import fastsse
import psutil
import pytest
from fastsse import EventTooLargeError, FastSSEError
from fastsse._pure import PureParser
from support.parser_cases import PARSERS

parsers = pytest.mark.parametrize("factory", PARSERS)

MiB = 1024 * 1024
CHUNK = 64 * 1024
TOTAL = 200 * MiB


def feed_without_newline(
    parser: Any, first: bytes, filler: bytes, total: int = TOTAL
) -> tuple[int, list[int], list[Any], list[Any]]:
    """Feeds ``first`` then ``filler`` (one reused object) up to ``total`` bytes.

    Returns the peak RSS growth, the indexes of the feeds that raised, the errors, and the
    events returned.
    """
    process = psutil.Process()
    gc.collect()
    before = peak = process.memory_info().rss
    raised: list[int] = []
    errors: list[Any] = []
    events: list[Any] = []
    for index in range(total // len(filler)):
        chunk = first if index == 0 else filler
        try:
            events += parser.feed(chunk)
        except EventTooLargeError as error:
            raised.append(index)
            errors.append(error)
        if index % 32 == 0:
            peak = max(peak, process.memory_info().rss)
    peak = max(peak, process.memory_info().rss)
    return peak - before, raised, errors, events


# --- 200 MiB without a newline ----------------------------------------------------------------

LONG_LINE_CASES = [
    pytest.param(fastsse.Parser, "error", id="rust-error"),
    pytest.param(fastsse.Parser, "skip", id="rust-skip"),
    pytest.param(PureParser, "error", id="pure-error"),
]


@pytest.mark.parametrize(("factory", "mode"), LONG_LINE_CASES)
def test_200_mib_line_stays_bounded_and_is_reported(factory, mode):
    filler = b"x" * CHUNK
    parser = factory(max_event_size=MiB, on_oversize=mode)
    assert parser.feed(b"data: warm-up\n\n") == [fastsse.Event(data="warm-up")]
    # The first chunk completes an event, then starts the endless data line.
    first = b"data: before\n\ndata: " + b"x" * (CHUNK - 20)
    assert len(first) == CHUNK

    growth, raised, errors, events = feed_without_newline(parser, first, filler)

    assert growth < 32 * MiB, f"RSS grew by {growth / MiB:.1f} MiB"
    assert events == [fastsse.Event(data="before")]
    assert parser.oversized == 1
    if mode == "error":
        # The line passes 1 MiB during the 17th feed (index 16): that one raises, once.
        assert raised == [16]
        (error,) = errors
        assert isinstance(error, FastSSEError)
        assert isinstance(error, ValueError)
        assert error.max_event_size == MiB
        assert error.discarded == 1
        assert error.events == []
        assert "max_event_size" in str(error)
        assert str(MiB) in str(error)
    else:
        assert raised == []
    # The blank line ends the oversized event; the next one is delivered, nothing else.
    assert parser.feed(b"\n\ndata: next\n\n") == [fastsse.Event(data="next")]
    assert parser.oversized == 1


@pytest.mark.parametrize("comments", [False, True], ids=["dropped", "kept"])
@pytest.mark.parametrize(("factory", "mode"), LONG_LINE_CASES)
def test_200_mib_comment_line_stays_bounded(factory, mode, comments):
    """A comment is not part of an event: never an error, never buffered whole; one kept for
    take_comments() is cut to its first max_event_size bytes."""
    filler = b"x" * CHUNK
    parser = factory(max_event_size=MiB, on_oversize=mode, comments=comments)
    # The pure parser scans the kept megabyte again at each feed: 20 MiB show its bound.
    total = 20 * MiB if comments and factory is PureParser else TOTAL
    growth, raised, _, events = feed_without_newline(parser, b":" + filler[1:], filler, total)
    assert growth < 32 * MiB, f"RSS grew by {growth / MiB:.1f} MiB"
    assert (raised, events, parser.oversized, parser.pending) == ([], [], 0, False)
    assert parser.take_comments() == []  # not complete yet
    assert parser.feed(b"\ndata: next\n\n") == [fastsse.Event(data="next")]
    assert parser.take_comments() == (["x" * MiB] if comments else [])


@pytest.mark.parametrize("mode", ["error", "skip"])
def test_200_mib_of_short_data_lines_without_blank_line_stays_bounded_rust(mode):
    line = b"data: " + b"y" * 57 + b"\n"  # 64 bytes
    filler = line * (CHUNK // len(line))
    parser = fastsse.Parser(max_event_size=MiB, on_oversize=mode)
    growth, raised, errors, events = feed_without_newline(parser, filler, filler)
    assert growth < 32 * MiB, f"RSS grew by {growth / MiB:.1f} MiB"
    assert events == []
    assert parser.oversized == 1
    if mode == "error":
        assert raised == [16]  # 1 MiB of field lines (63 bytes each) is passed in the 17th chunk
        assert errors[0].events == []
    else:
        assert raised == []
    assert parser.feed(b"\ndata: next\n\n") == [fastsse.Event(data="next")]


# --- oversized events: exact semantics, both parsers ------------------------------------------


@parsers
def test_event_at_the_limit_fits_one_byte_more_does_not(factory):
    parser = factory(max_event_size=10)
    assert parser.feed(b"data: 1234\n\n") == [fastsse.Event(data="1234")]  # 10 bytes
    assert parser.oversized == 0
    with pytest.raises(EventTooLargeError):
        parser.feed(b"data: 12345\n\n")
    assert parser.oversized == 1
    parser = factory(max_event_size=12)
    assert parser.feed(b"data:1\ndata:2\n\n") == [fastsse.Event(data="1\n2")]  # 6 + 6
    with pytest.raises(EventTooLargeError):
        parser.feed(b"data:1\ndata:23\n\n")  # 6 + 7
    assert parser.oversized == 1


@parsers
def test_limit_counts_field_lines_not_comments_or_line_ends(factory):
    parser = factory(max_event_size=12)
    stream = b": " + b"c" * 100 + b"\r\ndata:1\r\n: more\r\ndata:2\r\n\r\n"
    assert parser.feed(stream) == [fastsse.Event(data="1\n2")]
    assert parser.oversized == 0
    with pytest.raises(EventTooLargeError):
        parser.feed(b"id:1\nevent:e\ndata:x\n\n")  # every field line counts: 4 + 7 + 6
    with pytest.raises(EventTooLargeError):
        parser.feed(b"foo:12345678\ndata:x\n\n")  # unknown fields too: 12 + 6
    assert parser.oversized == 2


@parsers
@pytest.mark.parametrize("split", [False, True])
def test_events_before_and_after_the_oversized_one_are_in_the_error(factory, split):
    parser = factory(max_event_size=24)
    stream = (
        b"id: 1\ndata: before\n\n"
        b"id: 2\ndata: " + b"x" * 40 + b"\ndata: rest of it\n\n"
        b"data: after\n\n"
    )
    chunks = [stream[:30], stream[30:]] if split else [stream]
    events: list[Any] = []
    errors = []
    for chunk in chunks:
        try:
            events += parser.feed(chunk)
        except EventTooLargeError as error:
            errors.append(error)
            events += error.events
    (error,) = errors
    assert error.discarded == 1
    assert error.max_event_size == 24
    assert events == [fastsse.Event(data="before", id="1"), fastsse.Event(data="after", id="1")]
    if not split:
        assert error.events == events
    # The oversized event's id was never dispatched, so it is not the resume point.
    assert parser.last_event_id == "1"
    assert parser.oversized == 1


@parsers
def test_skip_mode_counts_and_returns_the_other_events(factory):
    parser = factory(max_event_size=16, on_oversize="skip")
    stream = b"data: a\n\ndata: " + b"x" * 40 + b"\n\ndata: b\n\ndata: " + b"y" * 17 + b"\n\n"
    assert parser.feed(stream) == [fastsse.Event(data="a"), fastsse.Event(data="b")]
    assert parser.oversized == 2
    assert parser.feed(b"data: c\n\n") == [fastsse.Event(data="c")]
    assert parser.oversized == 2


@parsers
def test_two_oversized_events_in_one_chunk(factory):
    parser = factory(max_event_size=8)
    with pytest.raises(EventTooLargeError) as caught:
        parser.feed(b"data: 123456789\n\ndata: ok\n\ndata: 123456789\n\n")
    assert caught.value.discarded == 2
    assert caught.value.events == [fastsse.Event(data="ok")]
    assert parser.oversized == 2


@parsers
def test_oversized_line_in_small_chunks_raises_once(factory):
    parser = factory(max_event_size=32)
    outcomes = []
    for chunk in [b"data: "] + [b"z" * 8] * 20 + [b"\n", b"data: more\n", b"\n", b"data: ok\n\n"]:
        try:
            outcomes.append(parser.feed(chunk))
        except EventTooLargeError as error:
            outcomes.append(("raised", error.discarded, error.events))
    # "data: " + 26 bytes = 32 fits; the 4th 8-byte chunk makes it 38.
    assert outcomes[4] == ("raised", 1, [])
    assert [o for i, o in enumerate(outcomes) if i != 4][:-1] == [[]] * 23
    assert outcomes[-1] == [fastsse.Event(data="ok")]
    assert parser.oversized == 1


@parsers
def test_finish_ends_an_oversized_event(factory):
    parser = factory(max_event_size=8, on_oversize="skip")
    assert parser.feed(b"data: 123456789") == []
    assert parser.oversized == 1
    assert parser.finish() == []
    assert parser.feed(b"data: ok\n\n") == [fastsse.Event(data="ok")]
    assert parser.oversized == 1


@parsers
def test_max_event_size_one(factory):
    parser = factory(max_event_size=1, on_oversize="skip")
    assert parser.feed(b":\n\n\n: comment\n\ndata\n\n") == []
    assert parser.oversized == 1


# --- bad arguments ----------------------------------------------------------------------------


@parsers
def test_feed_str_is_a_clear_type_error(factory):
    parser = factory()
    with pytest.raises(TypeError, match="encode"):
        parser.feed("data: x\n\n")


@parsers
@pytest.mark.parametrize("value", [None, 1, 1.5, ["data: x\n\n"], object()], ids=repr)
def test_feed_non_bytes_is_a_type_error(factory, value):
    parser = factory()
    with pytest.raises(TypeError, match="bytes"):
        parser.feed(value)


@parsers
def test_bad_feed_leaves_the_parser_usable(factory):
    parser = factory()
    assert parser.feed(b"data: a") == []
    with pytest.raises(TypeError):
        parser.feed(None)
    with pytest.raises(TypeError):
        parser.feed("b")
    assert parser.feed(b"\n\n") == [fastsse.Event(data="a")]


@parsers
@pytest.mark.parametrize("size", [0, -1, -(2**40)])
def test_non_positive_max_event_size_is_a_value_error(factory, size):
    with pytest.raises(ValueError, match="max_event_size"):
        factory(max_event_size=size)


@parsers
@pytest.mark.parametrize("mode", ["raise", "", "ERROR", "ignore"])
def test_bad_on_oversize_is_a_value_error(factory, mode):
    with pytest.raises(ValueError, match="on_oversize"):
        factory(on_oversize=mode)


# --- threads ----------------------------------------------------------------------------------


def run_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    assert not any(thread.is_alive() for thread in threads)


def test_separate_parsers_in_threads_are_correct():
    """Four threads, each with its own parser and stream, fed at odd chunkings while the
    interpreter switches threads as often as it can: each gets exactly its own events."""

    def stream(thread: int) -> bytes:
        return b"".join(
            b"id: %d-%d\nevent: t%d\ndata: %s\nretry: %d\n\n"
            % (thread, i, thread, b"x" * (i % 50), thread * 1000 + i)
            for i in range(400)
        )

    def events_of(parser: Any, data: bytes, size: int) -> list[Any]:
        events: list[Any] = []
        for start in range(0, len(data), size):
            events.extend(parser.feed(data[start : start + size]))
        return events

    n_threads = 4
    streams = [stream(thread) for thread in range(n_threads)]
    expected = [events_of(fastsse.Parser(), data, len(data)) for data in streams]
    assert all(len(events) == 400 for events in expected)
    results: list[list[list[Any]]] = [[] for _ in range(n_threads)]

    def worker(thread: int) -> None:
        for size in (1, 7, 64, 1000):
            results[thread].append(events_of(fastsse.Parser(), streams[thread], size))

    run_threads([lambda thread=thread: worker(thread) for thread in range(n_threads)])
    assert results == [[events] * 4 for events in expected]


def test_parser_shared_between_threads_serialises_calls():
    """Four threads feed one parser at once; one reads its properties.

    Each chunk completes 20 events and one oversized event, so every feed() builds an
    EventTooLargeError, whose Python __init__ lets another thread run. It runs after the
    parser is released: the feeds follow one another, each parsing its whole chunk. The one
    way in while a feed runs, a garbage collection inside it whose callbacks let another thread
    run (CPython before 3.12), is refused with a clear error before anything is parsed: a
    parser shared between threads is never corrupted.
    """
    parser = fastsse.Parser(max_event_size=64)
    chunk = b"id: 1\ndata: x\n\n" * 20 + b"data: " + b"y" * 100 + b"\n\nretry: 5\n\n"
    n_threads, rounds = 4, 200
    start = threading.Barrier(n_threads + 1)
    completed: list[EventTooLargeError] = []
    refused_feeds: list[RuntimeError] = []
    refused_reads: list[RuntimeError] = []
    unexpected: list[Any] = []

    def feeder() -> None:
        start.wait()
        for _ in range(rounds):
            try:
                unexpected.append(parser.feed(chunk))
            except EventTooLargeError as error:
                completed.append(error)
            except RuntimeError as error:
                refused_feeds.append(error)
            except BaseException as error:
                unexpected.append(error)

    reads: list[Any] = []

    def reader() -> None:
        start.wait()
        for _ in range(rounds):
            try:
                reads.append((parser.last_event_id, parser.retry, parser.pending))
            except RuntimeError as error:
                refused_reads.append(error)
            except BaseException as error:
                reads.append(error)

    run_threads([feeder] * n_threads + [reader])
    assert unexpected == []
    for error in refused_feeds + refused_reads:
        assert "in the middle of another call" in str(error)
    fed = len(completed)
    assert fed + len(refused_feeds) == n_threads * rounds
    assert len(reads) + len(refused_reads) == rounds
    for error in completed:
        assert error.events == [fastsse.Event(data="x", id="1")] * 20
        assert error.discarded == 1
    # A refused feed parsed nothing: the oversized count is that of the completed feeds.
    assert parser.oversized == fed
    # Between two feeds the parser is always at a chunk boundary: never mid-chunk.
    assert set(reads) <= {("", None, False), ("1", 5, False)}
    assert parser.feed(b"data: end\n\n") == [fastsse.Event(data="end", id="1")]


def test_a_call_from_a_collection_inside_feed_is_a_clear_error():
    """A garbage collection that runs inside feed() may run Python code (a gc callback, a
    finaliser) that calls the same parser: that call is refused with a clear error, never run
    on a parser mid-chunk, and the feed completes.

    feed() allocates one object the collector tracks, its result list. CPython before 3.12
    collects right there when enough young objects are waiting; 3.12 and later wait for the
    next bytecode, so there the callback runs after feed() and its call succeeds."""
    # The collector's own state (what earlier tests left) decides where the first collection
    # falls: set up again, a bounded number of times, until the callback reports one that
    # started inside feed() (before 3.12; from 3.12 it runs at the next bytecode).
    for _ in range(50):
        parser, events, inside, outcomes = _collect_while_feeding(b"id: 1\ndata: x\n\n" * 100)
        assert events == [fastsse.Event(data="x", id="1")] * 100
        if inside and (inside[0] or sys.version_info >= (3, 12)):
            break
    assert inside, "no collection ran in 50 tries"
    assert inside[0] or sys.version_info >= (3, 12), "no collection started inside feed()"
    if sys.version_info < (3, 12):
        assert isinstance(outcomes[0], RuntimeError), outcomes
        assert "in the middle of another call" in str(outcomes[0])
    else:
        assert outcomes[0] == "1"
    assert all(outcome == "1" for outcome in outcomes[1:] if isinstance(outcome, str))
    assert parser.last_event_id == "1"


def _collect_while_feeding(chunk: bytes) -> tuple[fastsse.Parser, list[Any], list[bool], list[Any]]:
    """Feeds ``chunk`` with a collection due at the next tracked allocation; returns the
    parser, the events, whether each collection started inside feed(), and what a gc callback
    calling the parser got at each start."""
    parser = fastsse.Parser()
    feed = parser.feed  # bound now: a method object would be one more allocation
    outcomes: list[Any] = []
    inside: list[bool] = []
    in_feed = False

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            inside.append(in_feed)
            try:
                outcomes.append(parser.last_event_id)
            except RuntimeError as error:
                outcomes.append(error)

    thresholds = gc.get_threshold()
    gc.callbacks.append(on_collection)
    gc.disable()
    young = [[] for _ in range(10)]  # the next tracked allocation finds them and collects
    gc.set_threshold(1)
    gc.enable()
    try:
        in_feed = True
        events = feed(chunk)
        in_feed = False
    finally:
        in_feed = False
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(on_collection)
    del young
    return parser, events, inside, outcomes


def test_bytearray_resized_by_another_thread_while_fed():
    parser = fastsse.Parser()
    small, large = b"data: bb\n\n" * 5, b"data: a\n\n" * 10
    buffer = bytearray(large)
    n_rounds = 1000
    results: list[Any] = []
    stop = threading.Event()

    def mutator() -> None:
        for content in itertools.cycle((small, large)):
            if stop.is_set():
                break
            buffer[:] = content

    def feeder() -> None:
        try:
            for _ in range(n_rounds):
                try:
                    results.append(parser.feed(buffer))
                except RuntimeError as error:
                    results.append(error)
        finally:
            stop.set()

    run_threads([mutator, feeder])
    assert len(results) == n_rounds
    a, bb = [fastsse.Event(data="a")] * 10, [fastsse.Event(data="bb")] * 5
    # Each feed parsed one consistent snapshot of the buffer, whatever its size at the time.
    assert all(r in (a, bb) for r in results)
