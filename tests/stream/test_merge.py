"""fastsse.merge(): the events of many streams through one fair iterator, each stream keeping its
own reconnects and Last-Event-ID; closing the merge closes the streams."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterator

import anyio
import fastsse
import pytest
from fastsse import AsyncEventStream, Event, UnexpectedStatusError
from fastsse.testing import Delay, Response, SSEServer, delay, event, stall
from support.streams import TIMEOUT, fast_retry

pytestmark = pytest.mark.anyio


async def test_every_streams_events_come_tagged_with_their_stream(server: SSEServer) -> None:
    for name in "abc":
        server.route(
            f"/{name}",
            Response(body=[event(f"{name}{i}", id=str(i)) for i in range(3)]),
            Response(204),
        )
    streams = [AsyncEventStream(server.url_for(f"/{name}"), retry=fast_retry()) for name in "abc"]
    seen: dict[str, list[str]] = {name: [] for name in "abc"}
    with anyio.fail_after(TIMEOUT):
        async with fastsse.merge(*streams) as merged:
            async for stream, got in merged:
                seen[str(stream.response.url.path)[1:]].append(got.data)  # type: ignore[union-attr]
    assert seen == {name: [f"{name}{i}" for i in range(3)] for name in "abc"}
    assert [stream.last_event_id for stream in streams] == ["2", "2", "2"]


def flood() -> Iterator[bytes | Delay]:
    """Events for ever, as fast as the client reads them. (The loopback server writes from one
    event loop: the pause of nothing after each block lets it serve the other connections too,
    where a client that reads fast enough would otherwise keep it writing this one alone.)"""
    block = event("b") * 1000
    while True:
        yield block
        yield delay(0)


async def test_a_busy_stream_does_not_starve_a_quiet_one(server: SSEServer) -> None:
    server.route("/busy", lambda request: Response(body=flood()))
    server.route(
        "/quiet",
        Response(body=[event("q1"), delay(0.05), event("q2"), delay(0.05), event("q3"), stall()]),
    )
    busy = AsyncEventStream(server.url_for("/busy"))
    quiet = AsyncEventStream(server.url_for("/quiet"))
    counts: Counter[str] = Counter()
    # The busy stream never runs dry: a merge that served it while it has events would never
    # hand out the quiet stream's.
    with anyio.fail_after(TIMEOUT):
        async with fastsse.merge(busy, quiet) as merged:
            async for _, got in merged:
                counts[got.data] += 1
                if got.data == "q3":
                    break
    assert counts["q1"] == counts["q2"] == counts["q3"] == 1
    assert counts["b"] > 0
    assert busy.closed
    assert quiet.closed


async def test_each_stream_reconnects_and_resumes_on_its_own(server: SSEServer) -> None:
    server.route("/a", Response(body=[event("a1", id="1")]), Response(body=[event("a2", id="2")]))
    server.route("/a", Response(204))
    server.route("/b", Response(body=[event("b1", id="7")]), Response(204))
    a = AsyncEventStream(server.url_for("/a"), retry=fast_retry())
    b = AsyncEventStream(server.url_for("/b"), retry=fast_retry())
    got: list[tuple[str, str]] = []
    with anyio.fail_after(TIMEOUT):
        async with fastsse.merge(a, b) as merged:
            async for stream, item in merged:
                got.append(("a" if stream is a else "b", item.data))
    assert sorted(got) == [("a", "a1"), ("a", "a2"), ("b", "b1")]
    assert [x for x in got if x[0] == "a"] == [("a", "a1"), ("a", "a2")]
    resumed = [r for r in server.requests if r.path == "/a"]
    assert [dict(r.headers).get("last-event-id") for r in resumed] == [None, b"1", b"2"]
    assert a.stats.reconnects == 2
    assert b.stats.reconnects == 1


async def test_closing_the_merge_closes_its_streams(server: SSEServer) -> None:
    for name in "ab":
        server.route(f"/{name}", Response(body=[event(name), stall()]))
    streams = [AsyncEventStream(server.url_for(f"/{name}")) for name in "ab"]
    merged = fastsse.merge(*streams)
    with anyio.fail_after(TIMEOUT):
        seen = {(await merged.__anext__())[1].data for _ in streams}
        assert seen == {"a", "b"}
        await merged.aclose()
        assert all(stream.closed for stream in streams)
        await server.wait_for_idle_async(TIMEOUT)
        with pytest.raises(StopAsyncIteration):
            await merged.__anext__()


async def test_a_streams_final_error_ends_the_merge_and_closes_the_others(
    server: SSEServer,
) -> None:
    server.route("/ok", Response(body=[event("ok"), stall()]))
    server.route("/gone", Response(404))
    ok = AsyncEventStream(server.url_for("/ok"))
    gone = AsyncEventStream(server.url_for("/gone"))
    with anyio.fail_after(TIMEOUT):
        merged = fastsse.merge(ok, gone)
        with pytest.raises(UnexpectedStatusError):
            async for _ in merged:
                pass
    assert ok.closed
    await server.wait_for_idle_async(TIMEOUT)


class Scripted(AsyncEventStream):
    """A stream whose batches come from a script, with no I/O: the merge's order, exactly."""

    def __init__(self, script: Callable[[], AsyncGenerator[list[Event], None]]) -> None:
        super().__init__("http://127.0.0.1:1/")
        self._script = script

    def batches(self) -> AsyncGenerator[list[Event], None]:  # type: ignore[override]
        return self._script()


async def endless() -> AsyncGenerator[list[Event], None]:
    for number in itertools.count():
        yield [Event(data=str(number))]


async def one_then_gone() -> AsyncGenerator[list[Event], None]:
    yield [Event(data="last")]
    raise UnexpectedStatusError("answered 404", response=None, body=b"")


async def test_a_streams_final_error_comes_in_its_turn_while_others_never_run_dry() -> None:
    busy, other, gone = Scripted(endless), Scripted(endless), Scripted(one_then_gone)
    handed_out: list[str] = []

    async def read(merged: fastsse.Merge) -> None:
        async for stream, _ in merged:
            handed_out.append("gone" if stream is gone else "busy")
            await anyio.sleep(0)  # an async handler: the readers refill while it runs
            assert len(handed_out) < 10_000, "the error never came"

    with anyio.fail_after(TIMEOUT):
        async with fastsse.merge(busy, other, gone) as merged:
            with pytest.raises(UnexpectedStatusError):
                await read(merged)
    # After the event before it, behind at most one batch of each other stream.
    assert "gone" in handed_out
    assert len(handed_out) - handed_out.index("gone") <= 3
    assert busy.closed
    assert other.closed


async def test_batches_after_events_start_with_what_is_left_of_the_batch(
    server: SSEServer,
) -> None:
    server.route("/a", Response(body=[event("1") + event("2") + event("3")]), Response(204))
    stream = AsyncEventStream(server.url_for("/a"))
    with anyio.fail_after(TIMEOUT):
        async with fastsse.merge(stream) as merged:
            _, first = await merged.__anext__()
            batches = [[e.data for e in batch] async for _, batch in merged.batches()]
    assert first.data == "1"
    assert batches == [["2", "3"]]


def test_a_merge_on_trio_is_refused_with_a_message() -> None:
    async def main() -> None:
        async with fastsse.merge(AsyncEventStream("http://127.0.0.1:1/")) as merged:
            await merged.__anext__()

    with pytest.raises(RuntimeError, match="runs on asyncio"):
        anyio.run(main, backend="trio")


async def test_bad_arguments_are_refused() -> None:
    stream = AsyncEventStream("http://127.0.0.1:1/")
    with pytest.raises(ValueError, match="at least one"):
        fastsse.merge()
    with pytest.raises(TypeError, match="AsyncEventStreams"):
        fastsse.merge(stream, "http://x/")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="twice"):
        fastsse.merge(stream, stream)
