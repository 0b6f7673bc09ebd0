"""An ``AsyncEventStream`` made without ``client=`` on asyncio sends through aiohttp's session
itself (fastsse._io.direct): the request httpx would send, and an ``httpx.Response`` to show
for it, made only when someone looks. (The whole stream suite also runs on this path: the
"direct" variant of tests/conftest.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastsse import AsyncEventStream, Event
from fastsse._io.aiohttp import AiohttpClient
from fastsse._io.direct import DirectClient, ShownResponse
from fastsse.testing import Response, SSEServer, event, stall
from support.streams import TIMEOUT, fast_retry


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as server:
        yield server


async def first(stream: AsyncEventStream) -> Event:
    with anyio.fail_after(TIMEOUT):
        return await stream.__anext__()


@pytest.mark.anyio
async def test_the_request_is_the_one_httpx_would_send(server: SSEServer) -> None:
    server.respond(Response(body=[event("a", id="é1")]), Response(body=[event("b"), stall()]))
    async with AsyncEventStream(server.url, retry=fast_retry()) as stream:
        assert (await first(stream)).data == "a"
        assert type(stream._client) is DirectClient
        assert (await first(stream)).data == "b"  # after a reconnect
        first_request, again = server.requests
    assert first_request.header("accept") == "text/event-stream"
    assert first_request.header("cache-control") == "no-cache"
    assert first_request.header("user-agent") == f"python-httpx/{httpx.__version__}"
    assert first_request.last_event_id is None
    # The id as UTF-8 bytes, as httpx sends a str header it cannot send as ASCII.
    assert again.header_bytes("last-event-id") == "é1".encode()


@pytest.mark.anyio
async def test_the_caller_sees_an_httpx_response_made_when_first_looked_at(
    server: SSEServer,
) -> None:
    server.respond(Response(body=[event("a"), stall()], headers={"X-Feed": "prices"}))
    connected: list[Any] = []
    async with AsyncEventStream(
        server.url, on_connect=connected.append, read_timeout=123.0
    ) as stream:
        assert (await first(stream)).data == "a"
        shown = stream.response
        assert shown is connected[0]
        assert isinstance(shown, ShownResponse)
        assert shown._source is not None  # Nobody looked yet: nothing of httpx's was made.
        assert isinstance(shown, httpx.Response)
        assert shown.status_code == 200
        assert shown._source is None
        assert shown.reason_phrase == "OK"
        assert shown.http_version == "HTTP/1.1"
        assert shown.headers["x-feed"] == "prices"
        assert shown.headers["content-type"].startswith("text/event-stream")
        assert str(shown.url) == server.url
        assert shown.request.method == "GET"
        assert shown.request.headers["accept"] == "text/event-stream"
        assert shown.request.extensions["timeout"]["read"] == 123.0
        assert shown.is_stream_consumed
        with pytest.raises(httpx.StreamConsumed):
            await shown.aread()
        assert stream.response is shown  # the same object every time
        with pytest.raises(AttributeError):
            shown.no_such_attribute  # noqa: B018


@pytest.mark.anyio
async def test_the_url_is_encoded_as_httpx_encodes_it(server: SSEServer) -> None:
    server.respond(Response(body=[event("a"), stall()]))
    url = server.url + "café/a b?q=x y&r=é"
    async with AsyncEventStream(url) as stream:
        assert (await first(stream)).data == "a"
    (request,) = server.requests
    assert request.target == httpx.URL(url).raw_path.decode("ascii")


@pytest.mark.anyio
async def test_redirects_are_followed_and_shown_in_the_history(server: SSEServer) -> None:
    server.route("/old", Response.redirect("/feed", 302))
    server.route("/feed", Response(body=[event("a"), stall()]))
    async with AsyncEventStream(server.url_for("/old")) as stream:
        assert (await first(stream)).data == "a"
        shown = stream.response
        assert shown is not None
        assert str(shown.url) == server.url_for("/feed")
        assert [r.status_code for r in shown.history] == [302]
        assert str(shown.history[0].url) == server.url_for("/old")


@pytest.mark.anyio
async def test_a_json_body_and_params_are_encoded_by_httpx(server: SSEServer) -> None:
    server.respond(Response(body=[event("a"), stall()]))
    stream = AsyncEventStream(
        server.url, method="POST", json={"prompt": "hé"}, params={"model": "m 1"}
    )
    async with stream:
        assert (await first(stream)).data == "a"
        assert type(stream._client) is DirectClient
    (request,) = server.requests
    expected = httpx.Request("POST", server.url, json={"prompt": "hé"}, params={"model": "m 1"})
    assert request.body == expected.content
    assert request.query == expected.url.query.decode()
    assert request.header("content-type") == "application/json"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "options",
    [
        {"auth": ("user", "secret")},
        {"data": {"a": "1"}},
        {"extensions": {"trace": None}},
    ],
    ids=["auth", "form-data", "extensions"],
)
async def test_what_only_httpx_does_goes_through_httpx(
    server: SSEServer, options: dict[str, Any]
) -> None:
    server.respond(Response(body=[event("a"), stall()]))
    if "extensions" in options:

        async def trace(name: str, info: dict[str, Any]) -> None:
            pass

        options = {"extensions": {"trace": trace}}
    method = "POST" if "data" in options else "GET"
    async with AsyncEventStream(server.url, method=method, **options) as stream:
        assert (await first(stream)).data == "a"
        assert type(stream._client) is AiohttpClient
    if "auth" in options:
        assert (
            server.requests[0].header("authorization")
            == httpx.BasicAuth("user", "secret")._auth_header
        )


@pytest.mark.anyio
async def test_a_proxy_from_the_environment_is_left_to_httpx(
    server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpx's client honours HTTPS_PROXY and the like (here bypassed for the loopback server).
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server.respond(Response(body=[event("a"), stall()]))
    async with AsyncEventStream(server.url) as stream:
        assert (await first(stream)).data == "a"
        assert type(stream._client) is AiohttpClient
