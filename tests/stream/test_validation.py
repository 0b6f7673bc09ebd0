"""Every public constructor and function refuses a bad argument at once, with a TypeError for a
wrong type and a ValueError for a wrong value, whose message names the argument.

One table for the parser, the consumer and the test server (the streams and ``Retry`` have
theirs in tests/stream/test_stream_validation.py); a second table shows that the edge values next to
each refused one are accepted, so a check cannot pass by refusing everything.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import sys
from collections.abc import AsyncIterator
from typing import Any, Callable

import pytest
from fastsse import Consumer, Event, EventStream, Parser, testing
from fastsse._pure import PureParser
from fastsse.testing import Delay, Response, SSEServer, comment, delay, event, split


async def _events() -> AsyncIterator[Event]:
    yield Event(data="x")


class Source:
    def __aiter__(self) -> AsyncIterator[Event]:
        return _events()


async def wait_for_nothing() -> object:
    return await SSEServer().wait_for_requests_async(0, timeout=0)


def url_of_a_feed() -> str:
    with SSEServer() as running:
        return running.url_for("/feed")


def start_and_stop() -> None:
    running = SSEServer().start(5)
    running.stop(5)


def handle(event: Event) -> None:
    pass


async def handle_async(event: Event) -> None:
    pass


async def on_error_async(event: Event, error: Exception) -> None:
    pass


class AsyncCallable:
    async def __call__(self, event: Event, error: Exception) -> None:
        pass


def consumer(**options: Any) -> Callable[[], object]:
    options.setdefault("stream", Source())
    options.setdefault("handler", handle)
    return lambda: Consumer(**options)


def server(*responses: Any, **options: Any) -> Callable[[], object]:
    return lambda: SSEServer(*responses, **options)


# (what is called, the call, the error, a pattern of its message)
Case = tuple[str, Callable[[], object], type[Exception], str]

#: Parser(**options) and PureParser(**options) refuse each alike (the same error and message).
PARSER_REFUSED: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"last_event_id": 5}, TypeError, "^last_event_id must be a str, not int$"),
    ({"last_event_id": b"1"}, TypeError, "^last_event_id must be a str, not bytes$"),
    ({"last_event_id": None}, TypeError, "^last_event_id must be a str, not NoneType$"),
    ({"last_event_id": "a\0b"}, ValueError, "^last_event_id must not contain U.0000 NULL, CR"),
    ({"last_event_id": "1\n"}, ValueError, "^last_event_id must not contain .* not '1.n'$"),
    ({"last_event_id": "\r"}, ValueError, "^last_event_id must not contain"),
    ({"last_event_id": "\ud800"}, ValueError, "^last_event_id must be text that UTF-8 can"),
    ({"max_event_size": 0}, ValueError, "^max_event_size must be a positive number .* not 0$"),
    ({"max_event_size": -1}, ValueError, "^max_event_size must be a positive number"),
    ({"max_event_size": 2**70}, ValueError, "^max_event_size must be a positive number"),
    ({"max_event_size": 1.5}, TypeError, "^max_event_size must be an int, not float$"),
    ({"max_event_size": "10"}, TypeError, "^max_event_size must be an int, not str$"),
    ({"max_event_size": True}, TypeError, "^max_event_size must be an int, not bool$"),
    ({"max_event_size": None}, TypeError, "^max_event_size must be an int, not NoneType$"),
    ({"on_oversize": "drop"}, ValueError, "^on_oversize must be 'error' or 'skip', not 'drop'$"),
    ({"on_oversize": "ERROR"}, ValueError, "^on_oversize must be 'error' or 'skip'"),
    ({"on_oversize": None}, TypeError, "^on_oversize must be a str, 'error' or 'skip', not No"),
    ({"on_oversize": 1}, TypeError, "^on_oversize must be a str, 'error' or 'skip', not int$"),
    ({"comments": 1}, TypeError, "^comments must be True or False, not int$"),
    ({"comments": None}, TypeError, "^comments must be True or False, not NoneType$"),
    ({"comments": "yes"}, TypeError, "^comments must be True or False, not str$"),
    ({"max_events": 1}, TypeError, "unexpected keyword argument 'max_events'$"),
]

REFUSED: list[Case] = [
    # Consumer
    ("Consumer", consumer(stream=None), TypeError, "stream must be an async iterable"),
    ("Consumer", consumer(stream=[Event(data="x")]), TypeError, "stream must be an async iter"),
    ("Consumer", consumer(stream=EventStream("http://127.0.0.1:9/")), TypeError, "not an Event"),
    ("Consumer", consumer(handler="print"), TypeError, "handler must be callable"),
    ("Consumer", consumer(handler=None), TypeError, "handler must be callable"),
    ("Consumer", consumer(workers=0), ValueError, "workers must be an int >= 1"),
    ("Consumer", consumer(workers=-3), ValueError, "workers must be an int >= 1"),
    ("Consumer", consumer(workers=2.5), TypeError, "workers must be an int"),
    ("Consumer", consumer(workers="4"), TypeError, "workers must be an int"),
    ("Consumer", consumer(workers=True), TypeError, "workers must be an int"),
    ("Consumer", consumer(queue_size=0), ValueError, "queue_size must be an int >= 1"),
    ("Consumer", consumer(queue_size=None), TypeError, "queue_size must be an int"),
    ("Consumer", consumer(queue_size=True), TypeError, "queue_size must be an int"),
    ("Consumer", consumer(overflow="drop"), ValueError, "overflow must be one of 'block'"),
    ("Consumer", consumer(overflow="BLOCK"), ValueError, "overflow must be one of"),
    ("Consumer", consumer(overflow=None), TypeError, "overflow must be a str"),
    ("Consumer", consumer(on_error=5), TypeError, "on_error must be callable or None"),
    ("Consumer", consumer(on_error=on_error_async), TypeError, "on_error must be a plain"),
    ("Consumer", consumer(on_error=AsyncCallable()), TypeError, "on_error must be a plain"),
    # Parser (the Rust binding; PureParser is held to the same rows below)
    *[
        ("Parser", lambda options=options: Parser(**options), error, message)
        for options, error, message in PARSER_REFUSED
    ],
    ("Parser.feed", lambda: Parser().feed("data: x\n\n"), TypeError, "encode text first"),
    ("Parser.feed", lambda: Parser().feed(None), TypeError, "feed.. takes bytes"),
    ("Parser.take_comments", lambda: Parser().take_comments(1), TypeError, "argument"),
    # Event (the Rust binding; the pure parser builds the same type)
    ("Event", lambda: Event(data=b"x"), TypeError, "argument 'data' must be str or None, not b"),
    ("Event", lambda: Event(event=1), TypeError, "argument 'event' must be str or None, not int"),
    ("Event", lambda: Event(id=1), TypeError, "argument 'id' must be str or None, not int"),
    ("Event", lambda: Event(retry="1"), TypeError, "argument 'retry' must be int or None, not s"),
    ("Event", lambda: Event(retry=1.0), TypeError, "argument 'retry' must be int or None, not f"),
    ("Event", lambda: Event(retry=True), TypeError, "argument 'retry' must be int or None, not b"),
    ("Event", lambda: Event(retry=-1), ValueError, "argument 'retry' must be a number of milli"),
    ("Event", lambda: Event(size=1), TypeError, "unexpected keyword argument 'size'"),
    ("Event", lambda: Event("a", "b", "c", 1, 2), TypeError, "at most 4 arguments"),
    # SSEServer and its scripting
    ("SSEServer", server(port=-1), ValueError, "port must be from 0 to 65535"),
    ("SSEServer", server(port=65536), ValueError, "port must be from 0 to 65535"),
    ("SSEServer", server(port="80"), TypeError, "port must be an int"),
    ("SSEServer", server(host=""), ValueError, "host must not be empty"),
    ("SSEServer", server(host=None), TypeError, "host must be a str"),
    ("SSEServer", server(fallback=404), TypeError, "fallback must be a Response or a func"),
    ("SSEServer", server(b"data: x\n\n"), TypeError, "each response must be a Response"),
    ("SSEServer.respond", lambda: SSEServer().respond("x"), TypeError, "each response must"),
    ("SSEServer.route", lambda: SSEServer().route("feed"), ValueError, "path must start with"),
    ("SSEServer.route", lambda: SSEServer().route("/a?b=1"), ValueError, "no query string"),
    ("SSEServer.route", lambda: SSEServer().route(None), TypeError, "path must be a str"),
    ("SSEServer.route", lambda: SSEServer().route("/", None), TypeError, "each response"),
    ("SSEServer.wait_for_requests", lambda: SSEServer().wait_for_requests(-1), ValueError, "n"),
    ("SSEServer.wait_for_requests", lambda: SSEServer().wait_for_requests(1.5), TypeError, "n "),
    (
        "SSEServer.wait_for_requests",
        lambda: SSEServer().wait_for_requests(1, timeout=None),
        TypeError,
        "timeout must be a number of seconds",
    ),
    ("SSEServer.wait_for_idle", lambda: SSEServer().wait_for_idle(-1), ValueError, "timeout"),
    (
        "SSEServer.wait_for_requests_async",
        lambda: asyncio.run(SSEServer().wait_for_requests_async(-1)),
        ValueError,
        "n must be >= 0",
    ),
    (
        "SSEServer.wait_for_idle_async",
        lambda: asyncio.run(SSEServer().wait_for_idle_async("1")),
        TypeError,
        "timeout must be a number",
    ),
    ("SSEServer.url_for", lambda: SSEServer().url_for(None), TypeError, "path must be a str"),
    ("SSEServer.start", lambda: SSEServer().start(-1), ValueError, "timeout must be >= 0"),
    ("SSEServer.stop", lambda: SSEServer().stop(None), TypeError, "timeout must be a number"),
    ("Response.json", lambda: Response.json({}, status=600.0), TypeError, "status must be an"),
    ("Response.json", lambda: Response.json({}, headers=5), TypeError, "headers must be a map"),
    ("Response.json", lambda: Response.json({1, 2}), TypeError, "not JSON serializable"),
    ("Response", lambda: Response(99), ValueError, "status must be from 100 to 999"),
    ("Response", lambda: Response(1000), ValueError, "status must be from 100 to 999"),
    ("Response", lambda: Response("200"), TypeError, "status must be an int"),
    ("Response", lambda: Response(body="data: x\n\n"), TypeError, "not str: encode it"),
    ("Response", lambda: Response(body=5), TypeError, "body must be bytes or an iterable"),
    ("Response", lambda: Response(headers=[("a", "b")]), TypeError, "headers must be a mapp"),
    ("Response", lambda: Response(headers={"X": 1}), TypeError, "header X must be a str"),
    ("Response", lambda: Response(headers={"X": None}), TypeError, "header X must be a str"),
    ("Response", lambda: Response(headers={"X": "a\r\nY: b"}), ValueError, "must be one line"),
    ("Response", lambda: Response(content_type=b"text/plain"), TypeError, "content_type"),
    ("Response", lambda: Response(chunked=None), TypeError, "chunked must be a bool"),
    ("Response.redirect", lambda: Response.redirect("/", status=3), ValueError, "status"),
    ("Response.stream_bytes", lambda: Response.stream_bytes(b"x", 0), ValueError, "chunk_size"),
    (
        "Response.stream_chunks",
        lambda: Response.stream_chunks([b"x"], write_size=0),
        ValueError,
        "write_size must be >= 1",
    ),
    ("event", lambda: event(b"x"), TypeError, "data must be a str"),
    ("event", lambda: event("x", id="1\n2"), ValueError, "id must be one line"),
    ("event", lambda: event("x", event="a\rb"), ValueError, "event must be one line"),
    ("event", lambda: event("x", id=1), TypeError, "id must be a str"),
    ("event", lambda: event("x", retry=-1), ValueError, "retry must be >= 0"),
    ("event", lambda: event("x", retry="5"), TypeError, "retry must be an int"),
    ("comment", lambda: comment(b"ping"), TypeError, "text must be a str"),
    ("split", lambda: split("abc", at=[1]), TypeError, "data must be bytes"),
    ("split", lambda: split(b"abc", at=[4]), ValueError, "each offset in at must be from 0"),
    ("split", lambda: split(b"abc", at=[-1]), ValueError, "each offset in at must be from 0"),
    ("split", lambda: split(b"abc", at=[1.5]), TypeError, "each offset in at must be an int"),
    ("split", lambda: split(b"abc", at=[1], pause=-1), ValueError, "pause must be >= 0"),
    ("delay", lambda: delay(-0.1), ValueError, "seconds must be >= 0"),
    ("delay", lambda: delay(math.nan), ValueError, "seconds must be >= 0"),
    ("delay", lambda: delay("1"), TypeError, "seconds must be a number"),
    ("Delay", lambda: Delay(-1), ValueError, "seconds must be >= 0"),
]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        pytest.param(call, error, message, id=f"{name}-{i}")
        for i, (name, call, error, message) in enumerate(REFUSED)
    ],
)
def test_a_bad_argument_is_refused_with_a_clear_error(
    call: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        call()
    assert type(info.value) is error  # TypeError for a type, ValueError for a value


#: The values next to the refused ones, accepted by both parsers.
PARSER_ACCEPTED: list[dict[str, Any]] = [
    {"last_event_id": "7", "max_event_size": 1, "on_oversize": "skip", "comments": True},
    {"last_event_id": "a\tb\x01 \u2028é😀", "max_event_size": sys.maxsize, "comments": False},
    {"on_oversize": "error"},
    {},
]


def _parser_id(options: dict[str, Any]) -> str:
    return ",".join(f"{key}={value!r}"[:30] for key, value in options.items()) or "defaults"


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [pytest.param(*row, id=_parser_id(row[0])) for row in PARSER_REFUSED],
)
def test_the_rust_and_pure_parsers_refuse_alike(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    raised = []
    for parser in (Parser, PureParser):
        with pytest.raises(error, match=message) as info:
            parser(**options)
        assert type(info.value) is error
        raised.append(str(info.value))
    if "unexpected keyword" not in message:  # Python words that error itself
        assert raised[0] == raised[1]


@pytest.mark.parametrize("options", PARSER_ACCEPTED, ids=_parser_id)
def test_the_rust_and_pure_parsers_accept_alike(options: dict[str, Any]) -> None:
    rust, pure = Parser(**options), PureParser(**options)
    for parser in (rust, pure):
        assert parser.last_event_id == options.get("last_event_id", "")
        assert parser.max_event_size == options.get("max_event_size", 16 * 1024 * 1024)
        assert parser.take_comments() == []


# The values next to the refused ones, accepted.
ACCEPTED: list[tuple[str, Callable[[], object]]] = [
    ("Consumer", consumer(workers=1, queue_size=1, overflow="drop_newest", on_error=print)),
    ("Consumer", consumer(handler=handle_async, overflow="error")),
    *[("Parser", lambda options=options: Parser(**options)) for options in PARSER_ACCEPTED],
    ("Parser.take_comments", lambda: Parser(comments=True).take_comments()),
    ("Parser.feed", lambda: Parser().feed(memoryview(b"data: x\n\n"))),
    ("SSEServer", server(Response(), lambda request: Response(), port=65535, host="localhost")),
    ("SSEServer", server(port=0, fallback=lambda request: Response(204))),
    ("SSEServer.route", lambda: SSEServer().route("/", Response())),
    ("SSEServer.wait_for_requests", lambda: SSEServer().wait_for_requests(0, timeout=0)),
    ("SSEServer.wait_for_idle", lambda: SSEServer().wait_for_idle(0)),
    ("SSEServer.wait_for_requests_async", lambda: asyncio.run(wait_for_nothing())),
    ("SSEServer.wait_for_idle_async", lambda: asyncio.run(SSEServer().wait_for_idle_async(0))),
    ("SSEServer.url_for", url_of_a_feed),
    ("SSEServer.start", start_and_stop),
    ("SSEServer.stop", start_and_stop),
    ("SSEServer.stop", lambda: SSEServer().stop(0)),
    ("SSEServer.respond", lambda: SSEServer().respond(Response(), lambda request: Response())),
    ("Event", lambda: Event(event="e", data="d", id="1", retry=0)),
    ("Event", lambda: Event("e", "a\0\r\nb", "a\0b\r\n", 10**30)),  # any data, any id
    ("Event", lambda: Event(event=None, data=None, id=None, retry=None)),
    ("Response.json", lambda: Response.json({"a": [1]}, 201, {"X": "1"})),
    ("Response.redirect", lambda: Response.redirect("/elsewhere", 399)),
    ("Response", lambda: Response(100, b"", {"X": "é"}, content_type=None, chunked=False)),
    ("Response", lambda: Response(999, (b"x" for _ in range(1)))),
    ("Response.stream_bytes", lambda: Response.stream_bytes(b"x", 1)),
    ("Response.stream_chunks", lambda: Response.stream_chunks([b"x"], write_size=1)),
    ("event", lambda: event("", event="e", id="a\0b", retry=0)),
    ("comment", lambda: comment("")),
    ("split", lambda: split(bytearray(b"abc"), at=[0, 3], pause=0)),
    ("delay", lambda: delay(0)),
    ("Delay", lambda: Delay(0.5)),
]


@pytest.mark.parametrize(
    "call", [pytest.param(call, id=f"{name}-{i}") for i, (name, call) in enumerate(ACCEPTED)]
)
def test_the_edge_values_are_accepted(call: Callable[[], object]) -> None:
    call()


def public_callables_with_arguments() -> set[str]:
    """The public constructors, functions and methods of fastsse.testing that take arguments,
    and the parser's and consumer's."""
    found = {"Consumer", "Parser", "Parser.feed", "Parser.take_comments", "Event"}
    for name in testing.__all__:
        obj = getattr(testing, name)
        if name == "RecordedRequest" or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # a record the server makes, or a type alias
        if inspect.signature(obj).parameters:
            found.add(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                function = getattr(member, "__func__", member)  # classmethods too
                if attr.startswith("_") or not inspect.isfunction(function):
                    continue
                if len(inspect.signature(function).parameters) > 1:  # more than self or cls
                    found.add(f"{name}.{attr}")
    return found


def test_the_tables_cover_every_public_callable_that_takes_arguments() -> None:
    public = public_callables_with_arguments()
    assert {"SSEServer.route", "Response.stream_bytes", "split"} <= public  # the scan works
    assert public - {name for name, *_ in REFUSED} == set()
    assert public - {name for name, _ in ACCEPTED} == set()
