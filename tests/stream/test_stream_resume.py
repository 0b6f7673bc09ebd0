"""Where a stream resumes from: stream.resume_from() before it connects (a checkpoint's ID),
and a server that ends every connection after an event (max_attempts counts failures only)."""

from __future__ import annotations

import anyio
import pytest
from fastsse import AsyncEventStream, EventStream
from fastsse.testing import RecordedRequest, Response, SSEServer, event
from support.streams import TIMEOUT, fast_retry, run_bounded


def test_the_first_request_sends_the_id_given_to_resume_from() -> None:
    with SSEServer(Response(body=[event("after 7", id="8")])) as server:
        with EventStream(server.url, retry=fast_retry(), reconnect=False) as stream:
            stream.resume_from("7")
            assert stream.last_event_id == "7"
            assert [e.data for e in stream] == ["after 7"]
        (request,) = server.requests
    assert request.last_event_id == "7"
    assert stream.last_event_id == "8"


@pytest.mark.anyio
async def test_async_resume_from_then_refused_once_connected() -> None:
    with SSEServer(Response(body=[event("one", id="1"), event("two", id="2")])) as server:
        async with AsyncEventStream(server.url, retry=fast_retry(), reconnect=False) as stream:
            stream.resume_from("0")
            with anyio.fail_after(TIMEOUT):
                first = await stream.__anext__()
            assert first.id == "1"
            with pytest.raises(RuntimeError, match="has not connected yet"):
                stream.resume_from("5")  # its own position wins from now on
            assert stream.last_event_id == "1"
        assert server.requests[0].last_event_id == "0"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_resume_from_refuses_an_id_no_event_can_have(bad: str) -> None:
    stream = EventStream("http://127.0.0.1:1/")
    with pytest.raises(ValueError, match="no event can have"):
        stream.resume_from(bad)
    with pytest.raises(TypeError, match="must be a str"):
        stream.resume_from(5)  # type: ignore[arg-type]
    stream.close()


def test_a_server_that_rotates_connections_does_not_exhaust_max_attempts() -> None:
    """Each connection delivers one event and ends cleanly; max_attempts=1 bounds consecutive
    reconnects that deliver nothing, so the stream follows all five, then the 204."""

    def one_event_per_connection(request: RecordedRequest) -> Response:
        after = int(request.last_event_id or 0)
        if after == 5:
            return Response(204)
        return Response(body=[event(f"e{after + 1}", id=str(after + 1))])

    with SSEServer(one_event_per_connection) as server:
        with EventStream(server.url, retry=fast_retry(max_attempts=1)) as stream:
            received = run_bounded(lambda: [e.id for e in stream])
        assert len(server.requests) == 6
    assert received == ["1", "2", "3", "4", "5"]
    assert stream.stats.reconnects == 5
