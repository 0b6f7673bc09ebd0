"""fastsse.testing.SSEServer, checked from the client side with httpx."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from fastsse.testing import (
    RecordedRequest,
    Response,
    SSEServer,
    abort,
    close,
    comment,
    delay,
    event,
    split,
    stall,
)

TIMEOUT = httpx.Timeout(5.0)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        yield client


def raw_pieces(client: httpx.Client, url: str) -> list[bytes]:
    with client.stream("GET", url) as response:
        return list(response.iter_raw())


def boundaries(pieces: list[bytes]) -> set[int]:
    return set(itertools.accumulate(len(piece) for piece in pieces))


# -- serialisation ------------------------------------------------------------------------------


def test_event_serialises_fields_and_every_data_line() -> None:
    assert event("a\nb\r\nc\rd", event="tick", id="7", retry=1500) == (
        b"event: tick\nid: 7\nretry: 1500\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    )
    assert event("x\n") == b"data: x\ndata: \n\n"
    assert event(" lead", id="") == b"id: \ndata:  lead\n\n"
    assert event("é") == "data: é\n\n".encode()


def test_comment_and_split() -> None:
    assert comment() == b": ping\n"
    assert comment("a\nb") == b": a\n: b\n"
    assert split(b"0123456789ab", at=[10, 3]) == [b"012", b"3456789", b"ab"]
    parts = split(b"abcd", at=[2], pause=0.5)
    assert parts[0] == b"ab"
    assert parts[2] == b"cd"
    assert parts[1] == delay(0.5)


# -- responses ------------------------------------------------------------------------------------


def test_events_stream_with_sse_headers(server: SSEServer, client: httpx.Client) -> None:
    body = [event("hello", id="1"), comment(), event("a\nb", event="multi", retry=10)]
    server.respond(Response(body=body))
    response = client.get(server.url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["connection"] == "close"
    assert response.content == b"".join(body)


def test_each_write_is_its_own_http_chunk(server: SSEServer, client: httpx.Client) -> None:
    raw = b"\xef\xbb\xbfdata: caf\xc3\xa9\r\rdata: \xff\xfe\n\n"
    server.respond(Response(body=split(raw, at=[2, 9, 14, 15])))
    pieces = raw_pieces(client, server.url)
    assert b"".join(pieces) == raw
    # httpx may cut a chunk further, but never merges two chunks into one read.
    assert {2, 9, 14, 15, len(raw)} <= boundaries(pieces)


def test_writes_separated_by_a_delay_arrive_as_separate_reads(
    server: SSEServer, client: httpx.Client
) -> None:
    server.respond(Response(body=split(b"data: x\n\n", at=[3, 6], pause=0.05)))
    assert raw_pieces(client, server.url) == [b"dat", b"a: ", b"x\n\n"]


def test_stream_bytes_sends_fixed_size_chunks(server: SSEServer, client: httpx.Client) -> None:
    corpus = b"data: 0123456789\n\n" * 5000
    server.respond(Response.stream_bytes(corpus, chunk_size=4096))
    pieces = raw_pieces(client, server.url)
    assert b"".join(pieces) == corpus
    assert set(range(4096, len(corpus), 4096)) <= boundaries(pieces)


def test_generator_body_is_played_lazily(server: SSEServer, client: httpx.Client) -> None:
    produced = 0

    def events() -> Iterator[bytes]:
        nonlocal produced
        for i in range(20_000):
            produced += 1
            yield event(str(i), id=str(i))

    server.respond(lambda request: Response(body=events()))
    with client.stream("GET", server.url) as response:
        pieces = response.iter_raw()
        first = next(pieces)
        assert first == event("0", id="0")
        assert produced < 20_000
        rest = b"".join(pieces)
    assert (first + rest).count(b"\n\n") == 20_000
    assert rest.endswith(event("19999", id="19999"))


def test_unframed_stream_ends_by_closing(server: SSEServer, client: httpx.Client) -> None:
    server.respond(Response(body=[event("a"), event("b")], chunked=False))
    response = client.get(server.url)
    assert "transfer-encoding" not in response.headers
    assert "content-length" not in response.headers
    assert response.content == event("a") + event("b")


def test_close_action_ends_the_response_cleanly(server: SSEServer, client: httpx.Client) -> None:
    server.respond(Response(body=[event("a"), close(), event("never")]))
    assert client.get(server.url).content == event("a")


@pytest.mark.parametrize(
    ("response", "content_type"),
    [
        (Response(content_type="text/plain"), "text/plain"),
        (Response(headers={"Content-Type": "application/json"}), "application/json"),
        (Response(content_type=None), None),
    ],
)
def test_content_type_can_be_wrong_or_missing(
    server: SSEServer, client: httpx.Client, response: Response, content_type: str | None
) -> None:
    server.respond(response)
    assert client.get(server.url).headers.get("content-type") == content_type


def test_statuses_with_headers_and_bodies(server: SSEServer, client: httpx.Client) -> None:
    server.route("/gone", Response(204))
    server.route("/auth", Response.json({"error": "no token"}, status=401))
    server.route("/busy", Response(503, b"later", {"Retry-After": "2"}, content_type="text/plain"))

    no_content = client.get(server.url_for("/gone"))
    assert no_content.status_code == 204
    assert no_content.content == b""
    assert "content-length" not in no_content.headers

    unauthorized = client.get(server.url_for("/auth"))
    assert unauthorized.status_code == 401
    assert unauthorized.headers["content-type"] == "application/json"
    assert unauthorized.json() == {"error": "no token"}

    busy = client.get(server.url_for("/busy"))
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "2"
    assert busy.text == "later"


@pytest.mark.parametrize("status", [301, 302, 307])
def test_redirect_is_followed_and_both_requests_recorded(
    server: SSEServer, client: httpx.Client, status: int
) -> None:
    server.route("/old", Response.redirect("/new?x=1", status=status))
    server.route("/new", Response(body=[event("moved")]))
    response = client.get(server.url_for("/old"), follow_redirects=True)
    assert response.content == event("moved")
    old, new = server.wait_for_requests(2)
    assert (old.path, new.path, new.query, new.target) == ("/old", "/new", "x=1", "/new?x=1")


def test_responses_are_consumed_in_order_and_the_last_repeats(
    server: SSEServer, client: httpx.Client
) -> None:
    assert client.get(server.url).status_code == 404  # nothing scripted yet
    server.respond(Response(body=[event("1")]), Response(body=[event("2")]))
    server.route("/other", Response(410))
    bodies = [client.get(server.url_for("/feed")).content for _ in range(3)]
    assert bodies == [event("1"), event("2"), event("2")]
    assert client.get(server.url_for("/other?q")).status_code == 410
    server.respond(Response(body=[event("3")]))
    assert client.get(server.url).content == event("3")


def test_fallback_is_configurable(client: httpx.Client) -> None:
    with SSEServer(fallback=Response(418, b"teapot", content_type="text/plain")) as server:
        assert client.get(server.url).status_code == 418


def test_handler_sees_the_request(server: SSEServer, client: httpx.Client) -> None:
    def resume(request: RecordedRequest) -> Response:
        start = int(request.last_event_id or "0") + 1
        return Response(body=[event(str(i), id=str(i)) for i in range(start, start + 2)])

    server.respond(resume)
    assert client.get(server.url).content == event("1", id="1") + event("2", id="2")
    resumed = client.get(server.url, headers={"Last-Event-ID": "41"})
    assert resumed.content == event("42", id="42") + event("43", id="43")


# -- recording ------------------------------------------------------------------------------------


def test_records_method_target_and_raw_header_bytes(
    server: SSEServer, client: httpx.Client
) -> None:
    server.respond(Response(body=[event("x")]))
    client.get(
        server.url_for("/feed?since=3"),
        headers={b"Last-Event-ID": "é".encode(), b"Accept": b"text/event-stream", b"X-Dup": b"a"},
    )
    (request,) = server.wait_for_requests(1)
    assert (request.method, request.path, request.query) == ("GET", "/feed", "since=3")
    assert request.header_bytes("last-event-id") == b"\xc3\xa9"
    assert request.last_event_id == "é"
    assert request.header("ACCEPT") == "text/event-stream"
    assert request.header("x-missing", "default") == "default"
    assert ("x-dup", b"a") in request.headers
    assert request.body == b""


def test_records_json_and_chunked_request_bodies(server: SSEServer, client: httpx.Client) -> None:
    server.respond(Response(body=[event("ok")]))
    client.post(server.url_for("/v1/chat"), json={"stream": True, "text": "é"})
    client.post(server.url, content=iter([b"ab", b"", b"cd"]))
    posted, chunked = server.wait_for_requests(2)
    assert posted.method == "POST"
    assert posted.header("content-type") == "application/json"
    assert posted.json() == {"stream": True, "text": "é"}
    assert chunked.header("transfer-encoding") == "chunked"
    assert chunked.body == b"abcd"


def test_wait_for_requests_is_bounded(server: SSEServer) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        server.wait_for_requests(1, timeout=0.05)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("garbage", "status"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
        (b"GET /\xff HTTP/1.1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 requires Host
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ],
)
def test_malformed_request_gets_an_error_status(
    server: SSEServer, client: httpx.Client, garbage: bytes, status: int
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(garbage)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 %d " % status)
    assert server.requests == []
    server.respond(Response(body=[event("still alive")]))
    assert client.get(server.url).content == event("still alive")


def test_expect_100_continue_is_answered(server: SSEServer) -> None:
    server.respond(Response(body=[event("ok")]))
    head = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head)
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):  # bounded by the socket's timeout
            chunk = sock.recv(1)
            assert chunk, "closed before answering 100 Continue"
            interim += chunk
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 ")
    (request,) = server.wait_for_requests(1)
    assert (request.path, request.body) == ("/up", b"hello")


def test_a_request_cut_off_midway_is_not_recorded_nor_answered(server: SSEServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(4096) == b""  # no answer: the server closed its side
    server.wait_for_idle()
    assert server.requests == []


# -- failures -------------------------------------------------------------------------------------


def test_abort_mid_event_is_an_error_not_an_end(server: SSEServer, client: httpx.Client) -> None:
    server.respond(Response(body=[event("whole"), b"data: half", abort()]))
    received: list[bytes] = []
    with client.stream("GET", server.url) as response:
        pieces = response.iter_raw()
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            received.extend(pieces)  # keeps what arrived before the error
    assert b"".join(received).startswith(event("whole"))


def test_stall_holds_the_client_until_its_read_timeout(server: SSEServer) -> None:
    server.respond(Response(body=[event("first"), stall()]))
    impatient = httpx.Client(timeout=0.3, trust_env=False)
    with impatient, impatient.stream("GET", server.url) as response:
        pieces = response.iter_raw()
        assert next(pieces) == event("first")
        with pytest.raises(httpx.ReadTimeout):
            next(pieces)
    server.wait_for_idle()  # the stall noticed the client leave


def test_stop_while_a_client_is_stalled_is_prompt() -> None:
    server = SSEServer(Response(body=[event("first"), stall()])).start()
    outcome: list[BaseException | None] = []

    def consume() -> None:
        try:
            with httpx.Client(timeout=10, trust_env=False) as client:
                raw_pieces(client, server.url)
            outcome.append(None)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    server.wait_for_requests(1)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2.0
    consumer.join(5.0)
    assert not consumer.is_alive()
    assert isinstance(outcome[0], (httpx.RemoteProtocolError, httpx.ReadError))


def test_client_leaving_mid_stream_is_quiet(
    server: SSEServer, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    endless = (item for i in itertools.count() for item in (event(str(i)), delay(0.001)))
    server.route("/endless", lambda request: Response(body=endless))
    server.route("/fixed", Response(body=[event("next")]))
    with caplog.at_level(logging.DEBUG), client.stream("GET", server.url_for("/endless")) as r:
        assert next(r.iter_raw()) == event("0")
    server.wait_for_idle()
    assert client.get(server.url_for("/fixed")).content == event("next")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_url_helpers() -> None:
    server = SSEServer()
    with pytest.raises(RuntimeError):
        _ = server.url
    with server:
        assert server.url == f"http://127.0.0.1:{server.port}/"
        assert server.url_for("/a/b?c=d") == f"http://127.0.0.1:{server.port}/a/b?c=d"
        assert server.connections == 0
    server.stop()  # idempotent


# -- async ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_usage() -> None:
    async with SSEServer(Response(body=[event("a"), delay(0.01), event("b")])) as server:
        async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False) as client:
            async with client.stream("GET", server.url_for("/feed")) as response:
                received = b"".join([piece async for piece in response.aiter_raw()])
            (request,) = await server.wait_for_requests_async(1)
        await server.wait_for_idle_async()
    assert received == event("a") + event("b")
    assert request.path == "/feed"


@pytest.mark.anyio
async def test_async_stop_while_stalled_is_prompt() -> None:
    server = SSEServer(Response(body=[event("first"), stall()]))
    client = httpx.AsyncClient(timeout=TIMEOUT, trust_env=False)
    async with server, client, client.stream("GET", server.url) as response:
        pieces = response.aiter_raw()
        assert await pieces.__anext__() == event("first")
        started = time.monotonic()
        await asyncio.to_thread(server.stop)
        assert time.monotonic() - started < 2.0
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await pieces.__anext__()
