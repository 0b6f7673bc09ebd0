"""The event-stream parser in plain Python, written for clarity from the WHATWG spec.

It is the executable reference the Rust parser is tested against (same vectors, and
differential tests on random streams at random chunkings), and the pure-Python baseline of the
benchmarks. Behaviour, including the ``max_event_size`` bound, is identical to ``fastsse.Parser``.

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream
"""

from __future__ import annotations

import re
import sys
from typing import Literal

from fastsse._errors import EventTooLargeError
from fastsse._fastsse import DEFAULT_MAX_EVENT_SIZE, RETRY_MAX_DIGITS, Event, Parser

_BOM = b"\xef\xbb\xbf"
#: The lowest limit a process can set on int/str conversions
#: (``sys.int_info.str_digits_check_threshold``): values this short never look the limit up.
_INT_STR_DIGITS_THRESHOLD = 640
_LINE_END = re.compile(rb"\r\n|\r|\n")


def retry_value(digits: bytes) -> int:
    """The ``retry:`` field's ASCII digits as an int, as in the Rust parser: exact up to
    RETRY_MAX_DIGITS digits (CPython's default int/str conversion limit), or up to the process's
    own limit when ``sys.set_int_max_str_digits`` set a lower one; longer values saturate at the
    largest value of that many digits instead of raising."""
    digits = digits.lstrip(b"0") or b"0"
    max_digits = RETRY_MAX_DIGITS
    if len(digits) > _INT_STR_DIGITS_THRESHOLD:
        # 0 means no limit; interpreters before 3.11 (and its security backports) have none.
        limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
        max_digits = min(limit or max_digits, max_digits)
    return int(digits) if len(digits) <= max_digits else 10**max_digits - 1


class PureParser:
    # The docstring is fastsse.Parser's (set below): same API, same results, same errors.

    def __init__(
        self,
        *,
        last_event_id: str = "",
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        on_oversize: Literal["error", "skip"] = "error",
        comments: bool = False,
        dataless_blocks: bool = False,
    ) -> None:
        if not isinstance(last_event_id, str):
            raise TypeError(f"last_event_id must be a str, not {type(last_event_id).__name__}")
        try:
            last_event_id.encode()
        except UnicodeEncodeError:
            raise ValueError(
                "last_event_id must be text that UTF-8 can encode, not one with a lone surrogate"
            ) from None
        if any(c in last_event_id for c in "\0\r\n"):
            raise ValueError(
                "last_event_id must not contain U+0000 NULL, CR or LF (no stream can set such an "
                f"id, and it could not be sent as the Last-Event-ID header), not {last_event_id!r}"
            )
        if not isinstance(max_event_size, int) or isinstance(max_event_size, bool):
            raise TypeError(f"max_event_size must be an int, not {type(max_event_size).__name__}")
        if max_event_size <= 0 or max_event_size > sys.maxsize:
            raise ValueError(
                "max_event_size must be a positive number of bytes that fits in memory, "
                f"not {max_event_size}"
            )
        if not isinstance(on_oversize, str):
            raise TypeError(
                f"on_oversize must be a str, 'error' or 'skip', not {type(on_oversize).__name__}"
            )
        if on_oversize not in ("error", "skip"):
            raise ValueError(f"on_oversize must be 'error' or 'skip', not {on_oversize!r}")
        if not isinstance(comments, bool):
            raise TypeError(f"comments must be True or False, not {type(comments).__name__}")
        if not isinstance(dataless_blocks, bool):
            raise TypeError(
                f"dataless_blocks must be True or False, not {type(dataless_blocks).__name__}"
            )
        self._dataless_blocks = dataless_blocks
        self._max_event_size = max_event_size
        self._skip_oversized = on_oversize == "skip"
        self._keep_comments = comments
        #: The comments fed since the last take, each with the number of events its feed()'s
        #: list holds before it.
        self._comments: list[tuple[int, str]] = []
        self._last_event_id = last_event_id
        self._retry: int | None = None
        self._oversized = 0
        self._pending = b""
        self._at_stream_start = True
        self._after_cr = False
        self._dropping_line = False
        self._discarding_event = False
        self._id_buffer = last_event_id
        self._data: list[bytes] = []
        self._event_type = b""
        self._event_retry: int | None = None
        #: The event's block has an id or retry field (that was applied).
        self._id_or_retry = False
        self._event_size = 0
        #: The first error met while building this chunk's events, raised once it is parsed.
        self._error: Exception | None = None

    @property
    def last_event_id(self) -> str:
        return self._last_event_id

    @property
    def retry(self) -> int | None:
        return self._retry

    @property
    def pending(self) -> bool:
        return bool(
            self._event_size
            or self._discarding_event
            or (self._pending and not self._at_stream_start and not self._pending.startswith(b":"))
        )

    @property
    def oversized(self) -> int:
        return self._oversized

    @property
    def max_event_size(self) -> int:
        return self._max_event_size

    @property
    def dataless_blocks(self) -> bool:
        return self._dataless_blocks

    def take_comments(self) -> list[str]:
        comments, self._comments = self._comments, []
        return [text for _, text in comments]

    def take_comments_at(self) -> list[tuple[int, str]]:
        comments, self._comments = self._comments, []
        return comments

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            hint = "; encode text first, e.g. text.encode()" if isinstance(data, str) else ""
            raise TypeError(
                f"feed() takes bytes, bytearray or memoryview, not {type(data).__name__}{hint}"
            )
        buffer = self._pending + bytes(data)
        if not buffer:
            return []
        if self._at_stream_start:
            # "One leading U+FEFF BYTE ORDER MARK character must be ignored if any are present."
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._pending = buffer
                return []
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
            self._at_stream_start = False
        oversized_before = self._oversized
        events: list[Event] = []
        position = 0
        if self._after_cr and buffer.startswith(b"\n"):
            position = 1  # The LF of a CRLF whose CR ended the previous chunk.
        self._after_cr = False
        for line_end in _LINE_END.finditer(buffer, position):
            line = buffer[position : line_end.start()]
            if self._dropping_line:
                self._dropping_line = False
            else:
                self._process_line(line, events)
            position = line_end.end()
            self._after_cr = line_end.group() == b"\r" and position == len(buffer)
        self._pending = buffer[position:]
        self._bound_unfinished_line()
        if self._error is not None:
            # As EventTooLargeError does: the chunk was parsed whole, its events are not lost.
            error, self._error = self._error, None
            error.events = events  # type: ignore[attr-defined]
            if hasattr(error, "add_note"):
                error.add_note(
                    "fastsse: the chunk was parsed whole; "
                    f"the {len(events)} events it completed are in .events"
                )
            raise error
        discarded = self._oversized - oversized_before
        if discarded and not self._skip_oversized:
            raise EventTooLargeError(
                f"an event exceeded max_event_size ({self._max_event_size} bytes)",
                events=events,
                max_event_size=self._max_event_size,
                discarded=discarded,
            )
        return events

    def finish(self) -> list[Event]:
        """End of stream: "If the file ends in the middle of an event, before the final empty
        line, the incomplete event is not dispatched." The parser is then ready for a new
        connection, keeping the last event ID and retry."""
        self._start_stream()
        return []

    def _start_stream(self) -> None:
        self._pending = b""
        self._at_stream_start = True
        self._after_cr = False
        self._dropping_line = False
        self._discarding_event = False
        self._id_buffer = self._last_event_id
        self._clear_event_fields()

    def _clear_event_fields(self) -> None:
        self._data = []
        self._event_type = b""
        self._event_retry = None
        self._id_or_retry = False
        self._event_size = 0

    def _bound_unfinished_line(self) -> None:
        """A line too long for the limit is dropped as it arrives, not when it ends; of a
        comment, only what its reported text can hold is kept."""
        pending = self._pending
        if not pending:
            return
        if self._dropping_line:  # The rest of a line already dropped.
            self._pending = b""
        elif pending.startswith(b":"):
            if self._keep_comments:
                # Its colon, one space, and the max_event_size bytes that _comment keeps.
                self._pending = pending[: self._max_event_size + 2]
            else:
                self._dropping_line = True
                self._pending = b""
        elif self._discarding_event or self._event_size + len(pending) > self._max_event_size:
            if not self._discarding_event:
                self._start_discarding()
            self._dropping_line = True
            self._pending = b""

    def _start_discarding(self) -> None:
        self._oversized += 1
        self._discarding_event = True
        self._id_buffer = self._last_event_id
        self._clear_event_fields()

    def _process_line(self, line: bytes, events: list[Event]) -> None:
        if not line:
            if self._discarding_event:
                self._discarding_event = False
            else:
                self._dispatch(events)
            return
        if line.startswith(b":"):
            # "If the line starts with a U+003A COLON character (:): Ignore the line", unless
            # the caller keeps comments (heartbeats).
            if self._keep_comments:
                self._comment(line[1:], len(events))
            return
        if self._discarding_event:
            return
        if self._event_size + len(line) > self._max_event_size:
            self._start_discarding()
            return
        self._event_size += len(line)
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event_type = value
        elif name == b"id" and b"\0" not in value:
            self._id_buffer = value.decode("utf-8", "replace")
            self._id_or_retry = True
        elif name == b"retry" and value.isdigit():  # bytes.isdigit(): ASCII digits only.
            self._retry = self._event_retry = retry_value(value)
            self._id_or_retry = True

    def _comment(self, text: bytes, position: int) -> None:
        if text.startswith(b" "):
            text = text[1:]
        try:
            self._comments.append(
                (position, text[: self._max_event_size].decode("utf-8", "replace"))
            )
        except Exception as error:  # In practice MemoryError: the chunk goes on regardless.
            if self._error is None:
                self._error = error

    def _dispatch(self, events: list[Event]) -> None:
        self._last_event_id = self._id_buffer
        # A block without data dispatches nothing, as the spec says, unless the caller asked
        # for one that sets an id or a retry (httpx-sse's and httpx2's behaviour).
        if self._data or (self._dataless_blocks and self._id_or_retry):
            try:
                event = Event(
                    event=self._event_type.decode("utf-8", "replace") or "message",
                    data=b"\n".join(self._data).decode("utf-8", "replace"),
                    id=self._last_event_id,
                    retry=self._event_retry,
                )
            except Exception as error:  # In practice MemoryError: the chunk goes on regardless.
                if self._error is None:
                    self._error = error
            else:
                events.append(event)
        self._clear_event_fields()


PureParser.__doc__ = (
    "The same parser as fastsse.Parser, in plain Python: same API, same results, same errors."
    f"\n\n{Parser.__doc__}"
)
