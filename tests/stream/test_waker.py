"""On asyncio an async stream's waits are cancelled through the reader's task (not an anyio
cancel scope): ``close()`` ends the wait for the response headers, and a cancellation from
outside is never taken for one of ``close()``'s, even when both come at once."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator

import pytest
from fastsse import AsyncEventStream
from fastsse.testing import RecordedRequest, Response, SSEServer, event
from support.streams import TIMEOUT

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="before 3.11 the waits are in anyio cancel scopes"
)


@pytest.fixture
def held() -> Iterator[tuple[SSEServer, threading.Event]]:
    """A server that holds its answer (the headers) until the test lets it go."""
    gate = threading.Event()

    def answer(request: RecordedRequest) -> Response:
        gate.wait(TIMEOUT)
        return Response(body=[event("a")])

    with SSEServer(answer) as server:
        try:
            yield server, gate
        finally:
            gate.set()


async def waiting_for_headers(server: SSEServer) -> tuple[AsyncEventStream, asyncio.Task[object]]:
    """A stream whose reader waits for the response headers (the waker says it is in a wait
    of its task's)."""
    stream = AsyncEventStream(server.url)
    task = asyncio.ensure_future(stream.__anext__())
    await server.wait_for_requests_async(1, TIMEOUT)
    async with asyncio.timeout(TIMEOUT):
        while stream._waker._scope is not task:
            await asyncio.sleep(0)
    return stream, task


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("close", "cancel", "ending"),
    [
        (True, False, StopAsyncIteration),  # close() ends the wait, and the iteration
        (False, True, asyncio.CancelledError),  # a cancellation from outside goes through...
        (True, True, asyncio.CancelledError),  # ...also when close() cancelled the task too
    ],
    ids=["close", "cancel", "close-and-cancel"],
)
async def test_a_wait_for_the_headers_ends_as_it_was_told(
    held: tuple[SSEServer, threading.Event],
    close: bool,
    cancel: bool,
    ending: type[BaseException],
) -> None:
    server, _ = held
    stream, task = await waiting_for_headers(server)
    if close:
        stream.close()  # the waker cancels the task
    if cancel:
        task.cancel()  # someone else does: theirs must never be absorbed as the waker's
    with pytest.raises(ending):
        await asyncio.wait_for(task, TIMEOUT)
    if not cancel:
        assert task.cancelling() == 0  # the waker's cancellation was taken back
    await stream.aclose()
