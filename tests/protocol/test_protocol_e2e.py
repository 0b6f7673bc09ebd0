"""The machine's rules as a user sees them, end to end: both stream flavours against a real
SSEServer on loopback (issue 15)."""

from __future__ import annotations

import logging

import pytest
from fastsse import RetriesExhausted, UnexpectedStatusError
from fastsse.testing import Response, SSEServer
from support.streams import KINDS, closed_port, collect, fast_retry


def _chain(error: BaseException | None) -> list[str]:
    texts = []
    for _ in range(8):
        if error is None:
            break
        texts.append(str(error))
        error = error.__cause__ or error.__context__
    return texts


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", ["refused", "404", "500 retry", "exhausted"])
def test_no_secret_of_the_url_in_logs_or_errors(
    kind: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 15, defect 14.
    caplog.set_level(logging.DEBUG, logger="fastsse")
    with SSEServer() as server:
        port = closed_port() if path == "refused" else server.port
        if path == "404":
            server.respond(Response(404, b"no such feed", content_type="text/plain"))
        elif path == "500 retry":
            server.respond(Response(500, b"oops", content_type="text/plain"), Response(204))
        elif path == "exhausted":
            server.respond(*[Response(503, b"busy", content_type="text/plain")] * 3)
        url = f"http://user:s3cret@127.0.0.1:{port}/feed?api_key=SECRETKEY"
        faults: list[str] = []
        outcome = collect(
            kind,
            url,
            retry=fast_retry(max_attempts=2),
            headers={"X-Token": "HEADERSECRET"},
            on_fault=lambda fault, _: faults.append(fault.message),
        )
    texts = [record.getMessage() for record in caplog.records] + faults
    texts += _chain(outcome.error)
    if path == "500 retry":
        assert outcome.error is None
        assert any("answered 500" in text for text in texts)
    elif path == "404":
        assert isinstance(outcome.error, UnexpectedStatusError)
    else:
        assert isinstance(outcome.error, RetriesExhausted)
    assert any("user:[secure]@127.0.0.1" in text for text in texts)
    assert any("api_key=[secure]" in text for text in texts)
    for text in texts:
        for secret in ("s3cret", "SECRETKEY", "HEADERSECRET"):
            assert secret not in text, text
