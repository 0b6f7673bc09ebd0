"""The binding's types are immutable, as built-in types are (issue 15, point 4): no attribute of
an instance can be set, and no attribute of the types Event and BatchIterator can be set or
deleted on the class."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from fastsse import Event, Parser
from fastsse._fastsse import BatchIterator

needs_immutable_types = pytest.mark.skipif(
    sys.version_info < (3, 10),
    reason="Py_TPFLAGS_IMMUTABLETYPE exists from Python 3.10; 3.9's heap types are mutable",
)


@pytest.mark.parametrize(
    ("name", "value"),
    [("json", 1), ("data", "x"), ("event", "x"), ("id", "x"), ("retry", 2), ("foo", 1)],
)
def test_no_attribute_of_an_event_can_be_set(name: str, value: Any) -> None:
    event = Event("e", "d", "i", 1)
    with pytest.raises(AttributeError):
        setattr(event, name, value)
    assert (event.event, event.data, event.id, event.retry) == ("e", "d", "i", 1)


@pytest.mark.parametrize("name", ["foo", "retry", "last_event_id", "feed", "take_comments_at"])
def test_no_attribute_of_a_parser_can_be_set(name: str) -> None:
    parser = Parser()
    with pytest.raises(AttributeError):
        setattr(parser, name, 1)
    assert parser.feed(b"data: x\n\n")[0].data == "x"


@needs_immutable_types
@pytest.mark.parametrize("cls", [Event, BatchIterator])
@pytest.mark.parametrize("name", ["json", "data", "__repr__", "__eq__", "foo"])
def test_the_c_api_types_are_immutable_like_int(cls: type, name: str) -> None:
    """``Event.json = ...`` raises TypeError, as ``int.real = ...`` does."""
    with pytest.raises(TypeError, match="immutable type"):
        setattr(int, name, None)  # the built-in behaviour this matches
    before = cls.__dict__.get(name)
    with pytest.raises(TypeError, match="immutable type"):
        setattr(cls, name, None)
    with pytest.raises(TypeError, match="immutable type"):
        delattr(cls, name)
    assert cls.__dict__.get(name) is before


@needs_immutable_types
def test_an_event_still_works_after_the_class_refused_a_change() -> None:
    with pytest.raises(TypeError):
        Event.json = lambda self: "patched"  # type: ignore[method-assign]
    assert Event(data="[1]").json() == [1]
    assert repr(Event(data="x")) == "Event(event='message', data='x', id='')"
