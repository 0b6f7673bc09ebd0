"""Streams against a real SSEServer: the request they send and how they judge each response."""

from __future__ import annotations

import gzip
import threading
import time

import anyio
import fastsse
import httpx
import pytest
from fastsse import (
    AsyncEventStream,
    ContentTypeError,
    Event,
    EventStream,
    RetriesExhausted,
    StreamInterruptedError,
    UnexpectedStatusError,
)
from fastsse.testing import RecordedRequest, Response, SSEServer, abort, close, event, stall
from support.streams import (
    KINDS,
    TIMEOUT,
    RecordingRetry,
    closed_port,
    collect,
    fast_retry,
    run_bounded,
    transport_error,
)


def busy(status: int = 503, **headers: str) -> Response:
    return Response(status, b"try later", headers, content_type="text/plain")


# -- the request -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_request_has_sse_headers_user_headers_and_params(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("x", id="1"), close()]), Response(204))
    outcome = collect(
        kind,
        server.url_for("/feed?fixed=1"),
        headers={"Authorization": "Bearer t0k3n", "X-Trace": "abc"},
        params={"topic": "news"},
    )
    assert outcome.error is None
    first, second = server.requests
    for request in (first, second):
        assert request.method == "GET"
        assert request.path == "/feed"
        assert request.query == "topic=news"  # params replace the URL's query, as in httpx
        assert request.header("accept") == "text/event-stream"
        assert request.header("cache-control") == "no-cache"
        assert request.header("authorization") == "Bearer t0k3n"
        assert request.header("x-trace") == "abc"
    assert first.last_event_id is None
    assert second.last_event_id == "1"
    assert [key for key, _ in second.headers].count("last-event-id") == 1


@pytest.mark.parametrize("kind", KINDS)
def test_user_accept_header_is_kept(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("x")]), Response(204))
    outcome = collect(kind, server.url, headers={"Accept": "text/event-stream, */*;q=0.1"})
    assert outcome.error is None
    assert server.requests[0].header("accept") == "text/event-stream, */*;q=0.1"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("event_id", ["日本語-é-1", "ü", "😀 id with spaces"])
def test_non_ascii_id_is_resent_as_utf8_bytes(server: SSEServer, kind: str, event_id: str) -> None:
    server.respond(
        Response(body=[event("one", id=event_id), abort()]),
        Response(body=[event("two"), close()]),
        Response(204),
    )
    outcome = collect(kind, server.url)
    assert outcome.error is None
    assert [(e.id, e.data) for e in outcome.events] == [(event_id, "one"), (event_id, "two")]
    assert outcome.last_event_id == event_id
    first, second, third = server.requests
    assert first.header_bytes("last-event-id") is None
    assert second.header_bytes("last-event-id") == event_id.encode()
    assert third.header_bytes("last-event-id") == event_id.encode()


@pytest.mark.parametrize("kind", KINDS)
def test_initial_last_event_id_is_sent_on_the_first_request(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("x", id="8")]), Response(204))
    outcome = collect(kind, server.url, last_event_id="7-ß")
    assert outcome.error is None
    assert [r.header_bytes("last-event-id") for r in server.requests] == [
        "7-ß".encode(),
        b"8",
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_last_event_id_header_from_the_caller_is_where_the_stream_starts(
    server: SSEServer, kind: str
) -> None:
    server.respond(Response(body=[event("x", id="42")]), Response(204))
    stream = EventStream(server.url, headers={"Last-Event-ID": "41"})
    assert stream.last_event_id == "41"
    stream.close()
    outcome = collect(kind, server.url, headers={"last-event-id": "41"})
    assert outcome.error is None
    assert [r.last_event_id for r in server.requests] == ["41", "42"]
    assert all([key for key, _ in r.headers].count("last-event-id") == 1 for r in server.requests)


# -- 200 and the content type ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "content_type",
    ["text/event-stream; charset=utf-8", "Text/Event-Stream", "text/event-stream ;foo=bar"],
)
def test_event_stream_content_type_with_parameters_is_parsed(
    server: SSEServer, kind: str, content_type: str
) -> None:
    server.respond(Response(body=[event("ok")], content_type=content_type), Response(204))
    outcome = collect(kind, server.url)
    assert outcome.error is None
    assert outcome.data == ["ok"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_a_body_with_a_content_coding_is_decoded(
    server: SSEServer, kind: str, encoding: str
) -> None:
    # A body without a content coding is read raw (httpx's decoding would only pass it
    # through); one with a coding goes through httpx's decoder, even split mid-way.
    plain = event("zipped", id="1") + event("twice") + b": a comment\n\n"
    body = gzip.compress(plain) if encoding == "gzip" else plain
    server.respond(
        Response(body=[body[:15], body[15:]], headers={"Content-Encoding": encoding}),
        Response(204),
    )
    outcome = collect(kind, server.url)
    assert outcome.error is None
    assert [(e.data, e.id) for e in outcome.events] == [("zipped", "1"), ("twice", "1")]
    assert outcome.stats.bytes == len(plain)


@pytest.mark.parametrize("kind", KINDS)
def test_204_stops_without_retry(server: SSEServer, kind: str) -> None:
    server.respond(Response(204))
    outcome = collect(kind, server.url)
    assert outcome.error is None
    assert outcome.events == []
    assert outcome.stats.reconnects == 0
    assert outcome.stats.errors == 0
    assert len(server.requests) == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("response", "named"),
    [
        (Response(200, b"<html>hello</html>", content_type="text/html"), "text/html"),
        (Response.json({"error": "not a stream"}), "application/json"),
        (Response(200, b"no type", content_type=None), "''"),
        (Response(201, [event("x")]), "201"),
        (Response(203, [event("x")]), "203"),
    ],
)
def test_wrong_content_type_or_2xx_fails_naming_what_arrived(
    server: SSEServer, kind: str, response: Response, named: str
) -> None:
    server.respond(response)
    outcome = collect(kind, server.url)
    error = outcome.error
    assert isinstance(error, ContentTypeError)
    assert isinstance(error, fastsse.SSEError)
    assert isinstance(error, httpx.TransportError)  # as httpx-sse's SSEError
    assert named in str(error)
    assert error.status_code == response.status
    assert error.content_type == (response.content_type or "")
    if isinstance(response.body, bytes):
        assert error.body == response.body
        assert f": {response.body.decode()}; check" in str(error)  # text, not b"..."
    assert len(server.requests) == 1
    assert outcome.events == []


# -- 4xx: fail at once ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 410, 422])
def test_4xx_fails_at_once_with_status_and_body(server: SSEServer, kind: str, status: int) -> None:
    server.respond(Response.json({"error": f"nope {status}"}, status=status))
    outcome = collect(kind, server.url)
    error = outcome.error
    assert isinstance(error, UnexpectedStatusError)
    assert error.status_code == status
    assert str(status) in str(error)
    assert f"nope {status}" in str(error)
    assert error.body == f'{{"error": "nope {status}"}}'.encode()
    assert len(server.requests) == 1
    assert outcome.stats.reconnects == 0


@pytest.mark.parametrize("kind", KINDS)
def test_error_quotes_only_the_first_bytes_of_a_long_body(server: SSEServer, kind: str) -> None:
    body = b"A" * 600 + b"B" * 100_000
    server.respond(Response(401, body, content_type="text/plain"))
    error = collect(kind, server.url).error
    assert isinstance(error, UnexpectedStatusError)
    assert error.status_code == 401
    assert "401 Unauthorized" in str(error)
    assert error.body.startswith(b"AAAA")
    assert 16 <= len(error.body) <= 4096
    assert b"B" * 1000 not in error.body
    assert len(str(error)) < 5000


@pytest.mark.parametrize("kind", KINDS)
def test_4xx_with_a_stalled_body_still_fails_at_once(server: SSEServer, kind: str) -> None:
    server.respond(Response(403, [b"forbidden", stall()], content_type="text/plain"))
    # The body's read is bounded at 1 s, far below read_timeout: the error is not held up.
    outcome = collect(kind, server.url, read_timeout=30.0, timeout=5.0)
    assert isinstance(outcome.error, UnexpectedStatusError)
    assert outcome.error.body == b"forbidden"
    assert len(server.requests) == 1
    assert outcome.elapsed < 3.0


@pytest.mark.parametrize("kind", KINDS)
def test_4xx_whose_body_never_comes_fails_after_a_short_wait(server: SSEServer, kind: str) -> None:
    server.respond(Response(404, [stall()], content_type="text/plain"))
    outcome = collect(kind, server.url, read_timeout=30.0, timeout=5.0)
    assert isinstance(outcome.error, UnexpectedStatusError)
    assert outcome.error.status_code == 404
    assert outcome.error.body == b""
    # The body preview waits 1 s at most, not read_timeout.
    assert 0.5 < outcome.elapsed < 3.0


@pytest.mark.parametrize("kind", KINDS)
def test_4xx_whose_body_is_cut_still_fails_at_once(server: SSEServer, kind: str) -> None:
    server.respond(Response(401, [b"unauthorized", abort()], content_type="text/plain"))
    outcome = collect(kind, server.url, timeout=1.0, retry=fast_retry(max_attempts=3))
    assert isinstance(outcome.error, UnexpectedStatusError)
    assert outcome.error.status_code == 401
    assert len(server.requests) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_stats_count_a_failing_response_as_an_error(server: SSEServer, kind: str) -> None:
    server.respond(Response(404, b"missing", content_type="text/plain"))
    outcome = collect(kind, server.url)
    assert isinstance(outcome.error, UnexpectedStatusError)
    assert outcome.stats.errors == 1


@pytest.mark.parametrize("kind", KINDS)
def test_4xx_after_a_reconnect_ends_the_stream(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("one", id="1"), abort()]), Response(401, b"expired"))
    outcome = collect(kind, server.url)
    assert outcome.data == ["one"]
    assert isinstance(outcome.error, UnexpectedStatusError)
    assert outcome.error.status_code == 401
    assert len(server.requests) == 2


# -- 5xx, 408, 429: reconnect ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_status_reconnects_then_streams(
    server: SSEServer, kind: str, status: int
) -> None:
    server.respond(busy(status), busy(status), Response(body=[event("ok", id="1")]), Response(204))
    outcome = collect(kind, server.url)
    assert outcome.error is None
    assert outcome.data == ["ok"]
    assert len(server.requests) == 4
    assert outcome.stats.errors == 2
    assert outcome.stats.reconnects == 3
    assert outcome.stats.connections == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("status", "value", "seconds"),
    [(503, "1", 1.0), (429, "7", 7.0), (503, "Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_reaches_the_policy_and_is_honoured(
    server: SSEServer, kind: str, status: int, value: str, seconds: float
) -> None:
    server.respond(
        busy(status, **{"Retry-After": value}),
        busy(status, **{"Retry-After": "not a number"}),
        Response(204),
    )
    # max_retry_after caps the wait so the test stays fast; the recorded value is the header's.
    policy = RecordingRetry(initial=0.001, max_delay=0.002, jitter=False, max_retry_after=0.05)
    outcome = collect(kind, server.url, retry=policy)
    assert outcome.error is None
    assert [d.retry_after for d in policy.log] == [seconds, None]
    # Retry-After is a floor under the backoff (1 ms here), capped by max_retry_after.
    assert policy.delays == pytest.approx([max(min(seconds, 0.05), 0.001), 0.0015])


@pytest.mark.parametrize("kind", KINDS)
def test_retry_after_is_actually_waited(server: SSEServer, kind: str) -> None:
    server.respond(busy(503, **{"Retry-After": "1"}), Response(204))
    policy = RecordingRetry(initial=0.001, max_delay=0.002, jitter=False, max_retry_after=0.3)
    outcome = collect(kind, server.url, retry=policy)
    assert outcome.error is None
    assert 0.3 <= outcome.elapsed < 2.0


@pytest.mark.parametrize("kind", KINDS)
def test_retry_after_is_ignored_on_other_statuses(server: SSEServer, kind: str) -> None:
    server.respond(busy(500, **{"Retry-After": "60"}), Response(204))
    policy = RecordingRetry(initial=0.001, max_delay=0.002, jitter=False)
    assert collect(kind, server.url, retry=policy).error is None
    assert [d.retry_after for d in policy.log] == [None]


@pytest.mark.parametrize("kind", KINDS)
def test_connection_refused_reconnects_then_gives_up(kind: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    policy = RecordingRetry(initial=0.001, max_delay=0.002, jitter=False, max_attempts=3)
    outcome = collect(kind, url, retry=policy)
    error = outcome.error
    assert isinstance(error, RetriesExhausted)
    assert error.attempts == 3
    assert isinstance(error.last_cause, transport_error("ConnectError"))
    assert error.__cause__ is error.last_cause
    assert "gave up after 3 reconnect attempts" in str(error)
    assert len(policy.log) == 4  # three delays handed out, then the refusal
    assert outcome.stats.errors == 4
    assert outcome.stats.reconnects == 3


@pytest.mark.parametrize("kind", KINDS)
def test_connection_refused_until_the_server_comes_up(kind: str) -> None:
    port = closed_port()
    policy = RecordingRetry(initial=0.001, max_delay=0.002, jitter=False, max_attempts=500)
    started: list[SSEServer] = []

    def start_after_two_refusals() -> None:
        deadline = time.monotonic() + TIMEOUT
        while len(policy.log) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        started.append(SSEServer(Response(body=[event("up")]), Response(204), port=port).start())

    helper = threading.Thread(target=start_after_two_refusals, daemon=True)
    helper.start()
    try:
        outcome = collect(kind, f"http://127.0.0.1:{port}/", retry=policy)
    finally:
        helper.join(TIMEOUT)
        for server in started:
            server.stop()
    assert outcome.error is None
    assert outcome.data == ["up"]
    assert outcome.stats.errors >= 2
    assert all(isinstance(d.cause, transport_error("ConnectError")) for d in policy.log[:2])


# -- redirects -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_followed_and_the_stream_resumes_through_it(
    server: SSEServer, kind: str, status: int
) -> None:
    server.route("/old", Response.redirect("/new?from=old", status=status))
    server.route(
        "/new",
        Response(body=[event("one", id="ü-1"), abort()]),
        Response(body=[event("two", id="ü-2"), close()]),
        Response(204),
    )
    outcome = collect(kind, server.url_for("/old"))
    assert outcome.error is None
    assert [(e.id, e.data) for e in outcome.events] == [("ü-1", "one"), ("ü-2", "two")]
    paths = [(r.path, r.header_bytes("last-event-id")) for r in server.requests]
    # Every reconnect starts at the original URL and follows the redirect again.
    assert paths == [
        ("/old", None),
        ("/new", None),
        ("/old", "ü-1".encode()),
        ("/new", "ü-1".encode()),
        ("/old", "ü-2".encode()),
        ("/new", "ü-2".encode()),
    ]
    assert all(r.header("accept") == "text/event-stream" for r in server.requests)


# -- POST ----------------------------------------------------------------------------------------

BODY = {"model": "m", "stream": True, "prompt": "héllo"}


@pytest.mark.parametrize("kind", KINDS)
def test_post_sends_its_json_body_and_ends_on_a_clean_eof(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("tok1"), event("tok2"), event("[DONE]")]))
    outcome = collect(kind, server.url_for("/v1/chat"), method="POST", json=BODY)
    assert outcome.error is None
    assert outcome.data == ["tok1", "tok2", "[DONE]"]
    (request,) = server.requests
    assert request.method == "POST"
    assert request.json() == BODY
    assert request.header("content-type") == "application/json"
    assert request.header("accept") == "text/event-stream"
    assert outcome.stats.reconnects == 0


@pytest.mark.parametrize("kind", KINDS)
def test_post_sends_a_raw_content_body(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("ok")]))
    outcome = collect(
        kind,
        server.url,
        method="post",
        content=b"raw \xff bytes",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert outcome.error is None
    (request,) = server.requests
    assert (request.method, request.body) == ("POST", b"raw \xff bytes")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("ending", "phrase"),
    [(abort(), "broke"), (close(), "ended in the middle of an event")],
)
def test_post_is_not_reconnected_and_a_broken_stream_raises(
    server: SSEServer, kind: str, ending: object, phrase: str
) -> None:
    server.respond(Response(body=[event("tok1", id="1"), b"data: tok", ending]))
    outcome = collect(kind, server.url, method="POST", json=BODY)
    assert outcome.data == ["tok1"]
    error = outcome.error
    assert isinstance(error, StreamInterruptedError)
    assert isinstance(error, fastsse.SSEError)
    assert phrase in str(error)
    assert "POST" in str(error)
    assert "reconnect=True" in str(error)
    assert len(server.requests) == 1
    assert outcome.stats.dropped == 1


@pytest.mark.parametrize("kind", KINDS)
def test_post_5xx_fails_without_reconnect(server: SSEServer, kind: str) -> None:
    server.respond(busy(503, **{"Retry-After": "1"}))
    outcome = collect(kind, server.url, method="POST", json=BODY)
    assert isinstance(outcome.error, UnexpectedStatusError)
    assert outcome.error.status_code == 503
    assert len(server.requests) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_post_with_reconnect_resumes_and_resends_its_body(server: SSEServer, kind: str) -> None:
    server.respond(
        Response(body=[event("tok1", id="1"), b"data: partial", abort()]),
        busy(502),
        Response(body=[event("tok2", id="2"), close()]),
        Response(204),
    )
    outcome = collect(kind, server.url, method="POST", json=BODY, reconnect=True)
    assert outcome.error is None
    assert outcome.data == ["tok1", "tok2"]
    requests = server.requests
    assert [r.method for r in requests] == ["POST"] * 4
    assert [r.json() for r in requests] == [BODY] * 4
    assert [r.last_event_id for r in requests] == [None, "1", "1", "2"]


@pytest.mark.parametrize("kind", KINDS)
def test_get_with_reconnect_false_ends_on_eof(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event("a")]), Response(body=[event("never")]))
    outcome = collect(kind, server.url, reconnect=False)
    assert outcome.error is None
    assert outcome.data == ["a"]
    assert len(server.requests) == 1


# -- the API: client, batches, stats, iteration ---------------------------------------------------


def test_sync_stream_uses_the_callers_client_and_leaves_it_open(server: SSEServer) -> None:
    server.respond(Response(body=[event("a")]), Response(204))
    with httpx.Client(headers={"X-Client": "mine"}) as client:
        with EventStream(server.url, client=client, retry=fast_retry()) as stream:
            assert run_bounded(lambda: [e.data for e in stream]) == ["a"]
        assert stream.closed
        assert not client.is_closed
        assert client.get(server.url).status_code == 204  # still usable
    assert server.requests[0].header("x-client") == "mine"


@pytest.mark.anyio
async def test_async_stream_uses_the_callers_client_and_leaves_it_open() -> None:
    async with SSEServer(Response(body=[event("a")]), Response(204)) as server:
        async with httpx.AsyncClient(headers={"X-Client": "mine"}) as client:
            with anyio.fail_after(TIMEOUT):
                async with AsyncEventStream(server.url, client=client, retry=fast_retry()) as s:
                    assert [e.data async for e in s] == ["a"]
                assert s.closed
                assert not client.is_closed
                assert (await client.get(server.url)).status_code == 204
        assert server.requests[0].header("x-client") == "mine"


@pytest.mark.parametrize("kind", KINDS)
def test_batches_group_the_events_of_each_chunk(
    server: SSEServer, kind: str, http_client: str
) -> None:
    server.respond(
        Response(body=[event("1") + event("2") + event("3"), event("4"), b"data: 5\n", b"\n"]),
        Response(204),
    )
    outcome = collect(kind, server.url, batches=True)
    assert outcome.error is None
    batches = [[e.data for e in batch] for batch in outcome.batches]
    if http_client in ("httpx", "httpx2"):  # httpcore hands over one HTTP chunk per read
        assert batches == [["1", "2", "3"], ["4"], ["5"]]
    else:  # aiohttp reads what has arrived: whole chunks, maybe several, never part of one
        assert batches in (
            [["1", "2", "3", "4", "5"]],
            [["1", "2", "3", "4"], ["5"]],
            [["1", "2", "3"], ["4", "5"]],
            [["1", "2", "3"], ["4"], ["5"]],
        )
    assert all(isinstance(batch, list) for batch in outcome.batches)
    assert all(isinstance(e, Event) for batch in outcome.batches for e in batch)


@pytest.mark.parametrize("kind", KINDS)
def test_stats_count_events_bytes_reconnects_errors_and_drops(server: SSEServer, kind: str) -> None:
    first = [event("a", id="1"), b": heartbeat\n", event("b", id="2"), b"data: cut", abort()]
    second = [event("c", id="3"), close()]
    server.respond(Response(body=first), busy(500), Response(body=second), Response(204))
    outcome = collect(kind, server.url)
    assert outcome.error is None
    stats = outcome.stats
    assert stats.events == 3
    assert stats.bytes == sum(len(piece) for piece in [*first[:4], second[0]])  # comments too
    assert stats.connections == 2
    assert stats.reconnects == 3
    assert stats.errors == 2  # the reset and the 500
    assert stats.dropped == 1
    assert stats.oversized == 0
    assert stats.json_errors == 0
    assert outcome.last_event_id == "3"


@pytest.mark.parametrize("kind", KINDS)
def test_empty_id_resets_the_resume_id(server: SSEServer, kind: str) -> None:
    server.respond(
        Response(body=[event("a", id="1"), b"id\ndata: b\n\n", close()]),
        Response(body=[event("c")]),
        Response(204),
    )
    outcome = collect(kind, server.url)
    assert outcome.error is None
    assert [(e.id, e.data) for e in outcome.events] == [("1", "a"), ("", "b"), ("", "c")]
    assert [r.header_bytes("last-event-id") for r in server.requests] == [None, None, None]


@pytest.mark.parametrize("kind", KINDS)
def test_oversized_event_error_comes_after_the_events_of_its_chunk(
    server: SSEServer, kind: str
) -> None:
    chunk = event("a") + event("x" * 2000) + event("b")
    server.respond(Response(body=[chunk, stall()]))
    outcome = collect(kind, server.url, max_event_size=1000)
    assert outcome.data == ["a", "b"]
    error = outcome.error
    assert isinstance(error, fastsse.EventTooLargeError)
    assert [e.data for e in error.events] == ["a", "b"]
    assert error.max_event_size == 1000
    assert outcome.stats.oversized == 1


@pytest.mark.parametrize("kind", KINDS)
def test_oversized_event_is_skipped_and_counted(server: SSEServer, kind: str) -> None:
    chunk = event("a") + event("x" * 2000) + event("b")
    server.respond(Response(body=[chunk, event("c")]), Response(204))
    outcome = collect(kind, server.url, max_event_size=1000, on_oversize="skip")
    assert outcome.error is None
    assert outcome.data == ["a", "b", "c"]
    assert outcome.stats.oversized == 1
    assert outcome.stats.events == 3


@pytest.mark.parametrize("kind", KINDS)
def test_limit_breaks_out_and_closes_the_connection(server: SSEServer, kind: str) -> None:
    server.respond(Response(body=[event(str(i)) for i in range(5)] + [stall()]))
    outcome = collect(kind, server.url, limit=2)
    assert outcome.error is None
    assert outcome.data == ["0", "1"]
    server.wait_for_idle(1.0)


def resuming_feed(request: RecordedRequest) -> Response:
    """Events a, b, c with ids 1-3, from after the request's Last-Event-ID; 204 at the end."""
    start = int(request.last_event_id or 0)
    body = [event(data, id=str(number)) for number, data in enumerate("abc", 1)][start:]
    return Response(body=body) if body else Response(204)


def test_sync_a_new_iteration_continues_where_the_last_stopped(server: SSEServer) -> None:
    server.respond(resuming_feed)

    def run() -> list[str]:
        with EventStream(server.url, retry=fast_retry()) as stream:
            for first in stream:
                assert first.data == "a"
                assert stream.last_event_id == "1"
                break
            return [event.data for event in stream]

    assert run_bounded(run) == ["b", "c"]


def test_sync_iterating_from_two_threads_at_once_raises(server: SSEServer) -> None:
    server.respond(Response(body=[event("a"), stall()]))
    with EventStream(server.url, retry=fast_retry()) as stream:
        first = iter(stream)
        assert next(first).data == "a"
        reader = threading.Thread(target=lambda: next(first, None), daemon=True)
        reader.start()
        server.wait_for_requests(1)
        deadline = time.monotonic() + TIMEOUT
        while stream._loop is None or not stream._loop.gi_running:  # bounded below
            assert time.monotonic() < deadline, "the first reader never started reading"
            time.sleep(0.001)
        with pytest.raises(RuntimeError, match="already being iterated") as busy:
            next(iter(stream))
        assert f"GET {server.url} is already being iterated by another thread" in str(busy.value)
        stream.close()
        reader.join(TIMEOUT)
        assert not reader.is_alive()
    server.wait_for_idle(1.0)


@pytest.mark.anyio
async def test_async_a_new_iteration_continues_where_the_last_stopped() -> None:
    async with SSEServer(resuming_feed) as server:
        with anyio.fail_after(TIMEOUT):
            async with AsyncEventStream(server.url, retry=fast_retry()) as stream:
                async for first in stream:
                    assert first.data == "a"
                    assert stream.last_event_id == "1"
                    break
                assert [event.data async for event in stream] == ["b", "c"]


@pytest.mark.anyio
async def test_async_iterating_from_two_tasks_at_once_raises() -> None:
    async with SSEServer(Response(body=[event("a"), stall()])) as server:
        with anyio.fail_after(TIMEOUT):
            async with AsyncEventStream(server.url, retry=fast_retry()) as stream:
                first = stream.__aiter__()
                assert (await first.__anext__()).data == "a"

                async def read_on() -> None:
                    async for _ in first:
                        pass

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(read_on)
                    while stream._loop is None or not stream._loop.ag_running:
                        await anyio.sleep(0.001)  # bounded by fail_after above
                    with pytest.raises(RuntimeError, match="by another task") as busy:
                        await stream.__aiter__().__anext__()
                    assert f"GET {server.url} is already" in str(busy.value)
                    await stream.aclose()
        await server.wait_for_idle_async(1.0)
