"""The async stream driver, and the source of the sync one: scripts/unasync.py rewrites this file
into ``_sync/stream.py`` (``make test`` fails when that is stale). What cannot be generated lives
in ``flavour.py`` beside each: the async per-event fast path, and waking a blocked reader."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx

from fastsse._fastsse import Event
from fastsse._io import pool as _pool
from fastsse._io._async.flavour import AsyncFlavour, close_response
from fastsse._io.base import JSON, failed, finished
from fastsse._io.http import ASYNC_CLIENTS, aread_preview, response_socket, shown_of
from fastsse.protocol import NOT_JSON, STOP, JSONErrorHandler, Send, Verdict, Wait

__all__ = ["AsyncEventStream"]


class AsyncEventStream(AsyncFlavour):
    """An async Server-Sent Events stream that reconnects and resumes.

    ``async with AsyncEventStream(url) as stream: async for event in stream: ...``

    Also ``await anext(stream)``, ``stream.batches()`` (a list per chunk: the fastest),
    ``stream.json()``, ``stream.response``, ``stream.stats``, ``stream.last_event_id``,
    ``stream.interrupt()`` and ``close()``, which may be called from any thread or task: the
    reader ends at once. ``await stream.aclose()`` also waits until the connection is released.
    The constructor's parameters are documented on ``__init__``.
    """

    _client_classes = ASYNC_CLIENTS

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def json(self, *, on_error: JSONErrorHandler | None = None) -> AsyncGenerator[JSON, None]:
        """Each event's data decoded as JSON. An event that is not JSON is counted in
        ``stats.json_errors`` and passed to ``on_error`` (default: logged), and the stream
        goes on."""
        decode = self._machine.decode_event
        events = self.__aiter__()
        try:
            async for event in events:
                value = decode(event, on_error)
                if value is not NOT_JSON:
                    yield value
        finally:
            await self._end_events(events)

    async def json_batches(
        self, *, on_error: JSONErrorHandler | None = None
    ) -> AsyncGenerator[list[JSON], None]:
        """The events' data decoded as JSON, as lists, one per chunk received; see ``json``."""
        batches = self.batches()
        try:
            async for batch in batches:
                decoded = self._machine.decode_json(batch, on_error)
                if decoded:
                    yield decoded
        finally:
            await batches.aclose()

    async def batches(self) -> AsyncGenerator[list[Event], None]:
        """The events as lists, one per chunk received: the fastest way to consume.

        Every iteration of a stream continues where the last one stopped, on the same
        connection: a ``break`` leaves it open, and only ``aclose()`` closes it."""
        if getattr(self._loop, "ag_running", False):
            raise self._busy()
        loop = None
        try:
            while True:
                if self._has_pending():
                    # Events a break left come first: before this iteration began, or while
                    # it was suspended (another iteration, event by event, broke mid-batch).
                    yield self._take_pending()
                    continue
                if loop is None:
                    loop = self._loop_to_run(self._connection_loop)
                    if loop is None:
                        return
                # Not ``yield from``: that would close the loop whenever this iteration is
                # closed, and a ``break`` leaves the connection open for the next iteration.
                try:
                    batch = await loop.__anext__()
                except StopAsyncIteration:
                    return
                yield batch
        finally:
            if loop is not None and self._iteration_ended(loop, finished=finished(loop)):
                await loop.aclose()

    async def aclose(self) -> None:
        """Close the stream and its connection now; safe from any task, and idempotent."""
        self._machine.close()
        self._waker.wake()
        loop = self._loop
        if loop is not None and self._waker.may_close(loop):
            self._loop = None  # Closed here, not by an iteration.
            await loop.aclose()
        await self._close_events(loop)
        await self._release()

    async def _release(self) -> None:
        if self._owns_client and self._client is not None and self._loop is None:
            client, self._client = self._client, None
            await _pool.release_async(client)

    async def _send(self, client: httpx.AsyncClient, action: Send) -> httpx.Response:
        """The response to ``action``'s request, its body left to read (the client's: httpx's,
        or one that reads the same). In a frame of its own: the request is not kept while the
        body is read, for hours maybe."""
        request = self._build_request(client, action)
        self._waker.prepare(client, request)
        response: httpx.Response = await self._waker.cancellable(
            client.send(request, stream=True, **self._send_options)
        )
        return response

    async def _connection_loop(self) -> AsyncGenerator[list[Event], None]:
        machine = self._machine
        waker = self._waker
        waker.start()
        if self._client is None:
            self._client = _pool.acquire_async(self._new_client_options())
        client = self._client
        try:
            while True:
                action = machine.next_action()
                if action is STOP:
                    return
                if isinstance(action, Wait):
                    await waker.sleep(action.seconds)
                    continue
                assert isinstance(action, Send)
                try:
                    response = await self._send(client, action)
                except Exception as error:
                    # The socket the attempt found may be back in a pool that other streams
                    # share: close() must never shut it down.
                    waker.socket = None
                    failed(machine, error)
                    continue
                del action  # Not kept while the body is read.
                # A reused keep-alive connection made no connect event.
                waker.socket = response_socket(response)
                self._keep_cookies(response)
                try:
                    verdict = machine.response(response, shown=shown_of(response))
                    if verdict is Verdict.STREAM:
                        async for chunk in waker.read(response):
                            if machine.closed:
                                # Bytes that were on their way when close() came (a blocked
                                # read it could not stop): nothing is handed out after it.
                                return
                            events = machine.feed(chunk)
                            if events:
                                self._batch = events
                                yield events
                            while machine.has_deferred_work:  # Comments: in wire order.
                                events = machine.next_segment()
                                if events:
                                    self._batch = events
                                    yield events
                        machine.ended()
                    elif verdict is Verdict.PREVIEW:
                        machine.refused(await waker.cancellable(aread_preview(response)))
                except Exception as error:
                    failed(machine, error)
                finally:
                    waker.socket = None
                    machine.end_response()
                    await close_response(response)
        except Exception as error:
            machine.raised(error)  # Final, as the stream's own errors: raised again later.
            raise
        finally:
            # Forgotten however it ends: also when a cancelled task or Ctrl-C ended its read
            # (which closed the connection), the next iteration starts a new loop, which
            # reconnects.
            self._loop = None
            if machine.closed or machine.done:
                await self._release()
