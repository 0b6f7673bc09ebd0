"""``fastsse tail``, run as a subprocess against SSEServer, as a user runs it."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest
from fastsse import __version__
from fastsse._tail import FIRST_CONNECTION_ATTEMPTS
from fastsse.testing import RecordedRequest, Response, SSEServer, abort, delay, event, stall
from support.streams import closed_port

TIMEOUT = 20.0  # generous: the interpreter starts in each subprocess, on a busy machine


class Tail:
    """A running ``fastsse tail``, its output read line by line as it comes."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fastsse", "tail", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr_lines: list[str] = []
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True).start()
        self._stderr_reader = threading.Thread(
            target=lambda: self.stderr_lines.extend(self.process.stderr), daemon=True
        )
        self._stderr_reader.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def next_line(self, timeout: float = TIMEOUT) -> str:
        """The next line printed: it arrives while the process is still running, so the
        process flushed it."""
        line = self.lines.get(timeout=timeout)
        assert line is not None, f"tail ended early; stderr: {self.stderr}"
        return line

    def wait(self, timeout: float = TIMEOUT) -> tuple[int, str]:
        """The exit status and the rest of standard output."""
        status = self.process.wait(timeout)
        rest = []
        while (line := self.lines.get(timeout=timeout)) is not None:
            rest.append(line)
        self._stderr_reader.join(timeout)
        return status, "".join(rest)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT)


@contextmanager
def tail(*args: str) -> Iterator[Tail]:
    running = Tail(*args)
    try:
        yield running
    finally:
        running.kill()


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastsse", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_each_event_is_printed_and_flushed_as_it_arrives() -> None:
    # The server stalls after the events: a line read while tail still runs was flushed by
    # tail, not by its exit.
    body = [
        event("hello"),
        event('{"n": 1}', event="update", id="7"),
        stall(),
    ]
    with SSEServer(Response(body=body)) as server, tail(server.url, "--max-events", "3") as t:
        assert t.next_line() == "hello\n"
        assert t.next_line() == '[update] id=7 {"n": 1}\n'
        assert t.process.poll() is None  # still streaming
        t.kill()


def test_max_events_exits_zero_after_n_events() -> None:
    body = [event(str(i), id=str(i)) for i in range(1, 6)] + [stall()]
    with SSEServer(Response(body=body)) as server, tail(server.url, "--max-events", "3") as t:
        status, out = t.wait()
    assert status == 0
    assert out == "id=1 1\nid=2 2\nid=3 3\n"


def test_json_pretty_prints_data_that_is_json() -> None:
    body = [event('{"choices": [{"delta": "hi"}]}', id="1"), event("[DONE]", id="2")]
    with SSEServer(Response(body=body)) as server:
        done = run("tail", server.url, "--json", "--no-reconnect")
    assert done.returncode == 0, done.stderr
    expected = json.dumps({"choices": [{"delta": "hi"}]}, indent=2)
    assert done.stdout == f"id=1\n{expected}\nid=2 [DONE]\n"


def test_raw_prints_each_event_s_fields_in_the_wire_format() -> None:
    # Written again from the event: the second event inherits id 1 and shows it.
    body = [b"event: tick\nid: 1\nretry: 500\ndata: a\ndata: b\n\n", b"data: plain\n\n"]
    with SSEServer(Response(body=body)) as server:
        done = run("tail", server.url, "--raw", "--no-reconnect")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout == "event: tick\nid: 1\nretry: 500\ndata: a\ndata: b\n\nid: 1\ndata: plain\n\n"
    )


def test_headers_method_body_and_last_event_id_are_sent() -> None:
    with SSEServer(Response(body=[event("ok")])) as server:
        done = run(
            "tail",
            server.url_for("/v1/stream"),
            "-H",
            "Authorization: Bearer t0ken",
            "-H",
            "X-Trace:  abc ",
            "-X",
            "PUT",
            "-d",
            '{"q": 1}',
            "--last-event-id",
            "41",
        )
        (request,) = server.requests
    assert done.returncode == 0, done.stderr
    assert done.stdout == "id=41 ok\n"  # the last event id given is the stream's, as sent
    assert (request.method, request.path, request.body) == ("PUT", "/v1/stream", b'{"q": 1}')
    assert request.header("authorization") == "Bearer t0ken"
    assert request.header("x-trace") == "abc"
    assert request.last_event_id == "41"
    assert request.header("accept") == "text/event-stream"


def test_data_implies_post_which_is_never_sent_twice() -> None:
    # A POST is not reconnected: a stream cut mid-way is an error, and the request is not
    # repeated.
    body = [event("partial", id="1"), delay(0.05), abort()]
    with SSEServer(Response(body=body)) as server:
        done = run("tail", server.url, "-d", "@-", stdin='{"from": "stdin"}')
        assert len(server.requests) == 1
        assert server.requests[0].method == "POST"
        assert server.requests[0].body == b'{"from": "stdin"}'
    assert done.stdout == "id=1 partial\n"
    assert done.returncode == 1
    assert done.stderr.startswith("fastsse tail: error: ")
    assert done.stderr.count("\n") == 1


def test_a_server_restart_mid_stream_resumes_without_repeats() -> None:
    first = SSEServer(Response(body=[event(f"e{i}", id=str(i)) for i in (1, 2, 3)] + [stall()]))
    first.start()
    port = first.port
    seen: list[RecordedRequest] = []

    def resumed(request: RecordedRequest) -> Response:
        seen.append(request)
        after = int(request.last_event_id or 0)
        return Response(body=[event(f"e{i}", id=str(i)) for i in range(after + 1, 6)])

    try:
        with tail(first.url, "--max-events", "5") as t:
            assert [t.next_line() for _ in range(3)] == ["id=1 e1\n", "id=2 e2\n", "id=3 e3\n"]
            first.stop()  # the server goes away mid-stream ...
            with SSEServer(resumed, port=port):  # ... and comes back on the same port
                status, out = t.wait()
    finally:
        first.stop()
    assert status == 0, t.stderr
    assert out == "id=4 e4\nid=5 e5\n"
    assert seen[0].last_event_id == "3"
    assert "the connection broke" in t.stderr
    assert "; reconnecting in " in t.stderr
    assert ", resuming with Last-Event-ID 3" in t.stderr


def test_ctrl_c_exits_130_without_a_traceback() -> None:
    with SSEServer(Response(body=[event("first"), stall()])) as server, tail(server.url) as t:
        assert t.next_line() == "first\n"
        t.process.send_signal(signal.SIGINT)
        status, out = t.wait()
    assert status == 130
    assert out == ""
    assert "Traceback" not in t.stderr


def test_an_http_error_is_one_line_and_exit_1() -> None:
    with SSEServer(Response(404, b"no such feed", content_type="text/plain")) as server:
        done = run("tail", server.url)
        assert len(server.requests) == 1  # a 404 is not retried
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "404 Not Found" in done.stderr
    assert "no such feed" in done.stderr


def test_connection_refused_with_no_reconnect_fails_at_once() -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    started = time.monotonic()
    done = run("tail", url, "--no-reconnect")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "connection refused" in done.stderr
    assert "reconnect=True" not in done.stderr  # advice for Python callers, not for tail
    assert time.monotonic() - started < TIMEOUT


def test_a_server_never_reached_is_tried_a_bounded_number_of_times() -> None:
    done = run("tail", f"http://127.0.0.1:{closed_port()}/")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == FIRST_CONNECTION_ATTEMPTS
    assert all(
        line.startswith("fastsse tail: connection refused") and "; reconnecting in " in line
        for line in lines[:-1]
    )
    assert lines[-1].startswith("fastsse tail: error: GET ")
    assert "gave up after" in lines[-1]
    assert "connection refused" in lines[-1]


def test_timeout_ends_a_silent_connection() -> None:
    with SSEServer(Response(body=[event("only"), stall()])) as server:
        done = run("tail", server.url, "--timeout", "0.5", "--no-reconnect")
    assert done.returncode == 1
    assert done.stdout == "only\n"
    assert "no data for 0.5 s (--timeout)" in done.stderr
    assert not PYTHON_KEYWORD.search(done.stderr), done.stderr


def test_bad_header_is_a_usage_error() -> None:
    done = run("tail", "http://127.0.0.1:1/", "-H", "no colon here")
    assert done.returncode == 2
    assert "expected 'Name: value'" in done.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("",), "url must not be empty"),
        (("http://127.0.0.1:1/", "-X", "BAD METHOD"), "method must be an HTTP method"),
        (("http://127.0.0.1:1/", "--last-event-id", "a\nb"), "last_event_id must not contain"),
    ],
)
def test_an_argument_no_stream_takes_is_one_line_and_exit_2(
    args: tuple[str, ...], said: str
) -> None:
    done = run("tail", *args)
    assert done.returncode == 2
    assert done.stderr.startswith("fastsse tail: error: ")
    assert said in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_version_and_bare_command() -> None:
    version = run("--version")
    assert (version.returncode, version.stdout) == (0, f"fastsse {__version__}\n")
    bare = run()
    # No command is a usage error: the usage and the commands on stderr, and status 2.
    assert bare.returncode == 2
    assert bare.stdout == ""
    assert bare.stderr.startswith("usage: fastsse")
    for command in ("demo", "bench", "tail", "relay"):
        assert command in bare.stderr


def test_a_body_file_that_cannot_be_read_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    done = run("tail", "http://127.0.0.1:1/", "-d", f"@{missing}")
    assert done.returncode == 2
    assert done.stderr == (
        f"fastsse tail: error: -d @{missing}: cannot read it: No such file or directory\n"
    )
    assert done.stdout == ""


@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan", ""])
def test_a_timeout_that_is_not_a_number_of_seconds_says_so(value: str) -> None:
    done = run("tail", "http://127.0.0.1:1/", "--timeout", value)
    assert done.returncode == 2
    last = done.stderr.splitlines()[-1]
    assert last == (
        "fastsse tail: error: argument --timeout: must be a number of seconds greater than 0, "
        f"not {value!r}"
    )
    assert "invalid" not in done.stderr  # argparse's "invalid _positive_float value"


def test_max_events_that_is_not_a_count_says_so() -> None:
    done = run("tail", "http://127.0.0.1:1/", "--max-events", "ten")
    assert done.returncode == 2
    assert "argument --max-events: must be a positive integer, not 'ten'" in done.stderr
    assert "invalid" not in done.stderr


#: A keyword argument in a message (``headers=``, ``reconnect=True``): Python callers' advice.
PYTHON_KEYWORD = re.compile(r"\b[a-z_]+=")


@pytest.mark.parametrize(
    ("status", "args", "hint"),
    [
        (401, (), "; check the credentials (-H 'Authorization: ...')"),
        (403, (), "; check the credentials (-H 'Authorization: ...')"),
        (405, (), "; check the method (-X METHOD)"),
        (422, ("-d", "{}"), "; check the request's body and headers (-d, -H 'Content-Type: ...')"),
        (429, ("-d", "{}"), "; tail never sends a POST twice: run it again later"),
        (503, ("-X", "PUT"), "; tail never sends a PUT twice: run it again later"),
        (429, ("--no-reconnect",), "; without --no-reconnect, tail retries it"),
    ],
)
def test_an_http_error_s_hint_speaks_tail_s_options(
    status: int, args: tuple[str, ...], hint: str
) -> None:
    with SSEServer(Response(status, b"denied", content_type="text/plain")) as server:
        done = run("tail", server.url, *args)
        assert len(server.requests) == 1
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.endswith(f": denied{hint}\n")
    assert not PYTHON_KEYWORD.search(done.stderr), done.stderr


def test_a_reconnect_after_a_clean_end_is_told_in_tail_s_options() -> None:
    responses = [Response(body=[event("a", id="1")]), Response(status=204, content_type=None)]
    with SSEServer(*responses) as server:
        done = run("tail", server.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "id=1 a\n"
    (line,) = done.stderr.splitlines()
    assert "a 204 response or --no-reconnect ends it instead" in line
    assert ", resuming with Last-Event-ID 1" in line
    assert not PYTHON_KEYWORD.search(line), line


def test_an_event_over_the_size_limit_is_told_without_python_s_words() -> None:
    big = b"data: " + b"x" * (17 * 1024 * 1024) + b"\n\n"  # over fastsse's 16 MiB
    with SSEServer(Response(body=[event("small"), big])) as server:
        done = run("tail", server.url)
    assert done.returncode == 1
    assert done.stdout == "small\n"
    assert done.stderr.count("\n") == 1
    assert "an event exceeded tail's limit of 16777216 bytes" in done.stderr
    assert ".events" not in done.stderr
    assert not PYTHON_KEYWORD.search(done.stderr), done.stderr


def test_raw_is_documented_as_what_it_prints() -> None:
    done = run("tail", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "--raw print each event in the wire format, written again from its fields" in text
    assert "an id is repeated on the events that inherit it" in text


def test_json_and_raw_exclude_each_other() -> None:
    done = run("tail", "http://127.0.0.1:1/", "--json", "--raw")
    assert done.returncode == 2
    assert "not allowed with" in done.stderr


def test_a_closed_pipe_ends_tail_quietly() -> None:
    # `fastsse tail URL | head -1`: the reader leaves after one line.
    body = [event("1"), delay(0.2), event("2"), delay(0.2), event("3"), stall()]
    with SSEServer(Response(body=body)) as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "fastsse", "tail", server.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == b"1\n"
            process.stdout.close()
            _, stderr = process.communicate(timeout=TIMEOUT)
        finally:
            process.kill()
    assert process.returncode == 0
    assert stderr == b""


@pytest.mark.parametrize(
    "responses",
    [
        [Response(404, b"no feed at /feed?token=FEEDTOKEN", content_type="text/plain")],
        [Response(503, b"busy", content_type="text/plain"), Response(404)],
        [Response(300, b"", {"Location": "/elsewhere?signature=SIGVALUE"}, content_type=None)],
    ],
    ids=["404", "a reconnect, then 404", "300 with a signed Location"],
)
def test_no_secret_of_a_url_is_printed(responses: list[Response]) -> None:
    # The feed's ?token=, and a signed URL the server redirects to, show as [secure] in every
    # line tail prints: its reconnect lines and its error line.
    with SSEServer(*responses) as server:
        done = run("tail", server.url + "feed?token=FEEDTOKEN")
    assert done.returncode == 1, done.stderr
    assert "token=[secure]" in done.stderr
    assert "FEEDTOKEN" not in done.stderr, done.stderr
    assert "SIGVALUE" not in done.stderr, done.stderr
