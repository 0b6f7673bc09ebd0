"""stream.resume_from(): where a stream that has not connected yet starts (a checkpoint's ID)."""

from __future__ import annotations

import anyio
import pytest
from fastsse import AsyncEventStream, EventStream
from fastsse.testing import Response, SSEServer, event
from stream_helpers import TIMEOUT, fast_retry


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
