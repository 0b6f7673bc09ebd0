"""Every argument of the stream constructors is checked when the stream is made: a wrong type
raises TypeError, a wrong value ValueError, each naming the argument. (Retry's own table is in
test_policy.py.)"""

from __future__ import annotations

import inspect
import math
import pydoc
from typing import Any

import httpx
import pytest
from fastsse import AsyncEventStream, EventStream, Retry

URL = "http://127.0.0.1:1/feed"

#: (keyword arguments, exception, the start of its message); URL is used unless ``url`` given.
INVALID: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"url": 5}, TypeError, "url must be a str or an httpx.URL"),
    ({"url": None}, TypeError, "url must be a str or an httpx.URL"),
    ({"url": ""}, ValueError, "url must not be empty"),
    ({"url": "   "}, ValueError, "url must not be empty"),
    ({"url": "http://[::1"}, ValueError, "url 'http://[::1' is not a valid URL"),
    ({"method": 5}, TypeError, "method must be a str"),
    ({"method": ""}, ValueError, "method must be an HTTP method"),
    ({"method": "GET STREAM"}, ValueError, "method must be an HTTP method"),
    ({"headers": 5}, TypeError, "headers, params and cookies must each be"),
    ({"headers": [("a",)]}, TypeError, "headers, params and cookies must each be"),
    ({"headers": {"X-Name": "é"}}, ValueError, "headers: a str value must be ASCII"),
    ({"headers": {"X-A": "a\nb"}}, ValueError, "headers: the value of X-A has control characters"),
    ({"params": 5}, TypeError, "headers, params and cookies must each be"),
    ({"cookies": 5}, TypeError, "headers, params and cookies must each be"),
    ({"json": object()}, TypeError, "json cannot be sent as JSON: Object of type object"),
    ({"json": {"x": math.nan}}, ValueError, "json cannot be sent as JSON: Out of range float"),
    ({"content": iter([b"x"])}, TypeError, "content must be str or bytes"),
    ({"content": 5}, TypeError, "content must be str or bytes"),
    ({"data": "a=1"}, TypeError, "data must be a mapping or None"),
    ({"files": 5}, TypeError, "files must be a mapping or a sequence of pairs"),
    ({"extensions": 5}, TypeError, "extensions must be a mapping or None"),
    ({"files": {"f": 5}}, TypeError, "files['f'] must be bytes, str, a file opened in binary"),
    ({"files": [("f", None)]}, TypeError, "files['f'] must be bytes, str, a file opened in"),
    ({"auth": "user:pass"}, TypeError, "auth must be a (user, password) tuple"),
    ({"auth": ("user",)}, ValueError, "auth must be a (user, password) pair, got a tuple of 1"),
    ({"timeout": "5"}, TypeError, "timeout must be a number of seconds or None"),
    ({"timeout": -1}, ValueError, "timeout must be a finite number of seconds >= 0"),
    ({"timeout": math.nan}, ValueError, "timeout must be a finite number of seconds >= 0"),
    ({"follow_redirects": "yes"}, TypeError, "follow_redirects must be True, False or None"),
    ({"reconnect": 1}, TypeError, "reconnect must be True, False or None"),
    ({"last_event_id": 7}, TypeError, "last_event_id must be a str"),
    ({"last_event_id": None}, TypeError, "last_event_id must be a str"),
    ({"last_event_id": "1\n2"}, ValueError, "last_event_id must not contain U+0000 NULL, CR or LF"),
    ({"last_event_id": "\0"}, ValueError, "last_event_id must not contain U+0000 NULL, CR or LF"),
    ({"retry": 3}, TypeError, "retry must be a fastsse.Retry or None"),
    ({"retry": {"initial": 1}}, TypeError, "retry must be a fastsse.Retry or None"),
    ({"read_timeout": -1}, ValueError, "read_timeout must be a finite number of seconds > 0"),
    ({"read_timeout": 0}, ValueError, "read_timeout must be a finite number of seconds > 0"),
    ({"read_timeout": math.inf}, ValueError, "read_timeout must be a finite number"),
    ({"read_timeout": "300"}, TypeError, "read_timeout must be a number of seconds or None"),
    ({"read_timeout": True}, TypeError, "read_timeout must be a number of seconds or None"),
    ({"connect_timeout": -0.5}, ValueError, "connect_timeout must be a finite number"),
    ({"connect_timeout": "1"}, TypeError, "connect_timeout must be a number of seconds"),
    ({"max_event_size": 0}, ValueError, "max_event_size must be a positive number"),
    ({"max_event_size": -5}, ValueError, "max_event_size must be a positive number"),
    ({"max_event_size": 1.5}, TypeError, "max_event_size must be an int"),
    ({"max_event_size": "1"}, TypeError, "max_event_size must be an int"),
    ({"on_oversize": "drop"}, ValueError, "on_oversize must be 'error' or 'skip'"),
    ({"on_oversize": None}, ValueError, "on_oversize must be 'error' or 'skip'"),
    ({"on_connect": 5}, TypeError, "on_connect must be callable or None"),
    ({"on_fault": "log"}, TypeError, "on_fault must be callable or None"),
    ({"on_comment": True}, TypeError, "on_comment must be callable or None"),
]


@pytest.mark.parametrize("stream_class", [EventStream, AsyncEventStream])
@pytest.mark.parametrize(
    ("kwargs", "error", "message"), INVALID, ids=[repr(row[0])[:60] for row in INVALID]
)
def test_invalid_arguments_are_rejected_at_construction(
    stream_class: type[EventStream | AsyncEventStream],
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    kwargs = dict(kwargs)
    url = kwargs.pop("url", URL)
    with pytest.raises(error) as raised:
        stream_class(url, **kwargs)
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_sync_client_is_rejected_by_the_async_stream() -> None:
    with httpx.Client() as client, pytest.raises(TypeError, match=r"must be an httpx\.AsyncClient"):
        AsyncEventStream(URL, client=client)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_an_async_client_is_rejected_by_the_sync_stream() -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(TypeError, match=r"client must be an httpx\.Client"):
            EventStream(URL, client=client)  # type: ignore[arg-type]


VALID: list[dict[str, Any]] = [
    {"url": httpx.URL(URL)},
    {"url": "/relative"},  # relative to a client's base_url
    {"method": "post", "json": {"q": 1}},
    {"headers": {"X-A": "1"}, "params": {"a": "1"}, "cookies": {"c": "1"}},
    {"headers": [(b"X-A", b"1")], "params": [("a", "1")]},
    {"content": b"body"},
    {"content": "body"},
    {"data": {"a": "1"}, "files": {"f": b"bytes"}},
    {"files": [("f", ("name.txt", b"bytes", "text/plain")), ("g", "text")]},
    {"headers": {"X-Name": "é".encode()}, "json": None},
    {"auth": ("user", "pass")},
    {"auth": httpx.BasicAuth("user", "pass")},
    {"timeout": 0},
    {"timeout": httpx.Timeout(5.0)},
    {"follow_redirects": False, "reconnect": True, "extensions": {}},
    {"last_event_id": "42", "retry": Retry(max_attempts=3)},
    {"read_timeout": None, "connect_timeout": None},
    {"read_timeout": 0.5, "connect_timeout": 2},
    {"max_event_size": 1, "on_oversize": "skip"},
    {"on_connect": print, "on_fault": lambda fault, delay: None, "on_comment": print},
]


@pytest.mark.parametrize("stream_class", [EventStream, AsyncEventStream])
@pytest.mark.parametrize("kwargs", VALID, ids=[repr(row)[:60] for row in VALID])
def test_valid_arguments_are_accepted(
    stream_class: type[EventStream | AsyncEventStream], kwargs: dict[str, Any]
) -> None:
    kwargs = dict(kwargs)
    url = kwargs.pop("url", URL)
    stream = stream_class(url, **kwargs)
    assert not stream.closed
    assert stream.response is None


@pytest.mark.parametrize("stream_class", [EventStream, AsyncEventStream])
def test_help_documents_every_constructor_parameter(
    stream_class: type[EventStream | AsyncEventStream],
) -> None:
    text = pydoc.render_doc(stream_class, renderer=pydoc.plaintext)
    names = [name for name in inspect.signature(stream_class).parameters if name != "self"]
    assert len(names) == 24
    undocumented = [name for name in names if f"``{name}``" not in text]
    assert undocumented == []
