"""fastsse.async_client(): the transport it picks, its timeouts, and a request sent once per
attempt (aiohttp on its own re-sends a GET whose connection fails before the response)."""

from __future__ import annotations

import ssl
import sys
from typing import Any

import aiohttp
import anyio
import httpx
import pytest
from fastsse import AsyncEventStream, EventStream, RetriesExhausted, async_client
from fastsse._io import transport as _transport
from fastsse._io.aiohttp import AiohttpClient, _not_resent
from fastsse._io.clients import classify, shutdown, socket_of
from fastsse._io.stream import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
from fastsse.testing import Response, SSEServer, event, stall
from httpx_aiohttp import AiohttpTransport
from support.streams import RecordingRetry


@pytest.mark.anyio
async def test_async_client_is_on_httpx_aiohttp_with_sse_timeouts(server: SSEServer) -> None:
    server.respond(Response(body=[event("hi")]))
    async with async_client(headers={"X-App": "demo"}) as client:
        assert isinstance(client, httpx.AsyncClient)
        assert isinstance(client, AiohttpClient)
        assert client.timeout == httpx.Timeout(DEFAULT_CONNECT_TIMEOUT, read=DEFAULT_READ_TIMEOUT)
        response = await client.get(server.url)
    assert response.text == "data: hi\n\n"
    assert server.requests[0].header("x-app") == "demo"


def test_async_client_keeps_the_callers_timeout_and_transport() -> None:
    assert async_client(timeout=5.0).timeout == httpx.Timeout(5.0)
    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    client = async_client(transport=transport)
    assert type(client) is httpx.AsyncClient  # the caller's transport, not aiohttp's
    assert client.timeout.read == DEFAULT_READ_TIMEOUT


def test_without_httpx_aiohttp_async_client_is_plain_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)  # import fails, as when missing
    client = async_client()
    assert type(client) is httpx.AsyncClient
    assert client.timeout == httpx.Timeout(DEFAULT_CONNECT_TIMEOUT, read=DEFAULT_READ_TIMEOUT)


@pytest.mark.anyio
async def test_a_request_whose_connection_fails_is_sent_once(server: SSEServer) -> None:
    server.respond(Response.hang_up())
    async with async_client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await client.get(server.url)
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_plain_httpx_aiohttp_would_send_it_twice(server: SSEServer) -> None:
    """Why fastsse's client exists: the bare transport re-sends (if aiohttp stops doing so,
    this test says the middleware can go)."""
    server.respond(Response.hang_up())
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        with pytest.raises(httpx.TransportError):
            await client.get(server.url)
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_a_stream_on_httpx_aiohttps_own_transport_warns_once(
    server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    as_it_comes = httpx.AsyncClient(transport=AiohttpTransport())
    mounted = httpx.AsyncClient(mounts={"http://": AiohttpTransport()})
    quiet = [async_client(), httpx.AsyncClient()]
    with caplog.at_level("WARNING", logger="fastsse"):
        for client in [as_it_comes, as_it_comes, mounted, *quiet]:
            AsyncEventStream(server.url, client=client)
    warnings = [r.getMessage() for r in caplog.records if "httpx-aiohttp" in r.getMessage()]
    assert len(warnings) == 2  # once per client, and only for the two bare transports
    assert all(f"GET {server.url}" in w and "fastsse.async_client()" in w for w in warnings)
    for client in [as_it_comes, mounted, *quiet]:
        await client.aclose()


@pytest.mark.anyio
async def test_a_response_aiohttp_cannot_parse_is_httpxs_protocol_error() -> None:
    # What aiohttp raises when its parser rejects a response's head or framing (a 400 of its
    # own: no raise_for_status here) is what h11 raises, which streams reconnect after.
    async def rejecting(request: Any) -> Any:
        raise aiohttp.ClientResponseError(
            request.request_info, (), status=400, message="Invalid character in chunk size"
        )

    class Request:
        request_info = None

    with pytest.raises(httpx.RemoteProtocolError, match="Invalid character in chunk size"):
        await _not_resent(Request(), rejecting)  # type: ignore[arg-type]
    assert classify(httpx.RemoteProtocolError("x")) == "broken"


@pytest.mark.anyio
async def test_every_failed_attempt_of_a_stream_hits_the_server_once(server: SSEServer) -> None:
    server.respond(Response.hang_up())
    policy = RecordingRetry(initial=0.005, multiplier=1.5, jitter=False, max_attempts=3)
    with anyio.fail_after(5):
        async with AsyncEventStream(server.url, retry=policy) as stream:
            with pytest.raises(RetriesExhausted) as caught:
                async for _ in stream:
                    pass
    assert isinstance(caught.value.last_cause, httpx.RemoteProtocolError)
    # The first request and one per reconnect the backoff decided: none behind its back.
    assert len(server.requests) == 4
    *delays, gave_up = policy.delays
    assert delays == pytest.approx([0.005, 0.0075, 0.01125])
    assert gave_up is None
    assert stream.stats.errors == 4


@pytest.mark.anyio
async def test_the_socket_of_an_aiohttp_response_is_found_so_aclose_needs_no_cancel_scope(
    server: SSEServer,
) -> None:
    server.respond(Response(body=[event("hi"), stall()]))
    async with async_client() as client, client.stream("GET", server.url) as response:
        sock = socket_of(response.extensions.get("network_stream"))
        assert sock is not None
        assert sock.fileno() >= 0
        chunks = response.aiter_bytes()
        assert await chunks.__anext__() == b"data: hi\n\n"
        shutdown(sock)  # what aclose() from another task does: the blocked read ends
        with anyio.fail_after(2), pytest.raises(httpx.ReadError):  # cut mid-body
            await chunks.__anext__()


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_on_trio_async_client_is_plain_httpx_and_a_stream_works(server: SSEServer) -> None:
    server.respond(Response(body=[event("a", id="1"), event("b", id="2")]), Response(204))
    assert type(async_client()) is httpx.AsyncClient  # aiohttp runs on asyncio only
    with anyio.fail_after(5):
        async with AsyncEventStream(server.url) as stream:
            assert [e.data async for e in stream] == ["a", "b"]
    assert stream.last_event_id == "2"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_httpx2_client_takes_httpx2_timeout_auth_and_cookies(
    server: SSEServer, kind: str
) -> None:
    import httpx2

    # Then silence: a reconnect that delivers no event is what max_attempts counts.
    server.respond(Response(body=[event("a", id="1"), stall()]), Response(body=[stall()]))
    timeout = httpx2.Timeout(2.0)  # httpx2's own class, which httpx's Timeout does not take
    options: dict[str, Any] = {
        "timeout": timeout,
        "auth": httpx2.BasicAuth("user", "secret"),
        "cookies": {"session": "s1"},
        "read_timeout": 0.3,
        "retry": RecordingRetry(initial=0.005, jitter=False, max_attempts=1),
    }

    def sync() -> list[str]:
        with httpx2.Client() as client, EventStream(server.url, client=client, **options) as s:
            return [e.data for e in s]

    async def asynchronous() -> list[str]:
        async with httpx2.AsyncClient() as client:
            stream = AsyncEventStream(server.url, client=client, **options)
            async with stream:
                return [e.data async for e in stream]

    with pytest.raises(RetriesExhausted) as caught:
        sync() if kind == "sync" else anyio.run(asynchronous)
    assert isinstance(caught.value.last_cause, httpx2.ReadTimeout)
    first = server.requests[0]
    assert first.header("authorization") == "Basic dXNlcjpzZWNyZXQ="
    assert first.header("cookie") == "session=s1"
    assert [r.last_event_id for r in server.requests] == [None, "1"]


def test_clients_made_for_streams_share_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the CA bundle is the costly part of a client (tens of ms, most of a MiB): the
    clients fastsse makes for streams load it once between them, unless told otherwise."""
    loads: list[object] = []
    load = ssl.SSLContext.load_verify_locations

    def counting_load(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        load(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting_load)
    _transport.shared_ssl_context.cache_clear()
    clients = [_transport.async_client() for _ in range(3)]
    clients += [_transport.sync_client() for _ in range(3)]
    clients.append(httpx.AsyncClient(**_stream_client_options()))
    assert len(loads) == 1
    own = _transport.async_client(verify=True)  # the caller's choice wins
    assert len(loads) == 2
    for client in clients:
        if isinstance(client, httpx.Client):
            client.close()
    del own


def _stream_client_options() -> dict[str, Any]:
    options: dict[str, Any] = {}
    _transport._stream_defaults(options)
    return options


@pytest.mark.anyio
@pytest.mark.parametrize("fast", [True, False])
async def test_async_client_follows_redirects_as_a_streams_own_client_does(
    server: SSEServer, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 15, defect 9: one default, whether the stream makes its client or is given ours.
    if not fast:
        monkeypatch.setattr(_transport, "fast_transport_installed", lambda: False)
    server.route("/old", Response.redirect("/feed", 307))
    server.route("/feed", Response(body=[event("moved", id="1")]))
    async with async_client() as client:
        assert client.follow_redirects
        assert isinstance(client, AiohttpClient) is fast
        async with AsyncEventStream(server.url + "old", client=client) as stream:
            first = await stream.__anext__()
    assert first.data == "moved"
    assert [request.path for request in server.requests] == ["/old", "/feed"]
    assert not async_client(follow_redirects=False).follow_redirects
