"""The one exception hierarchy of fastsse: everything it raises derives from FastSSEError."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from fastsse._fastsse import Event


class FastSSEError(Exception):
    """Base class of every error fastsse raises."""


class EventTooLargeError(FastSSEError, ValueError):
    """An event grew past ``max_event_size``.

    Its bytes were discarded as they arrived, so memory stayed bounded, and parsing resumes
    after the blank line that ends it. Nothing else is lost: ``events`` holds every event the
    same chunk completed, before and after the oversized one. ``response`` is the response
    it came in, when a stream raised it.
    """

    response: httpx.Response | None = None

    def __init__(
        self, message: str, *, events: list[Event], max_event_size: int, discarded: int = 1
    ) -> None:
        super().__init__(message)
        self.events = events
        self.max_event_size = max_event_size
        self.discarded = discarded


class SSEError(FastSSEError, httpx.TransportError):
    """The server's response is not a usable event stream (as httpx-sse's ``SSEError``)."""


class RetriesExhausted(FastSSEError):
    """The reconnect policy gave up: ``max_attempts`` consecutive reconnects all failed.

    ``last_cause`` is the exception of the last failure (also ``__cause__``), ``url`` the
    stream's request (``"GET https://..."``), and ``response`` the last failure's response when
    it came from one (a 503, say), else None.
    """

    attempts: int
    last_cause: BaseException | None
    url: str
    reason: str
    response: httpx.Response | None

    def __init__(
        self,
        attempts: int,
        last_cause: BaseException | None = None,
        *,
        url: str = "",
        reason: str = "",
        response: httpx.Response | None = None,
    ) -> None:
        noun = "attempt" if attempts == 1 else "attempts"
        where = f"{url}: " if url else ""
        if reason:
            detail = f"; last error: {reason}"
        elif last_cause is not None:
            detail = f"; last error: {_describe(last_cause)}"
        else:
            detail = ""
        advice = (
            " (Retry(max_attempts=...) sets how many to make; None keeps trying)" if url else ""
        )
        super().__init__(f"{where}gave up after {attempts} reconnect {noun}{detail}{advice}")
        self.attempts = attempts
        self.last_cause = last_cause
        self.url = url
        self.reason = reason
        self.response = response
        self.__cause__ = last_cause

    def __reduce__(self) -> tuple[Any, ...]:
        # The message is derived from the attributes, so rebuild from them (the default
        # reduce would call __init__ with the message as ``attempts``); the response is a
        # live object of a connection, so it is not sent along.
        return (
            _rebuild_exhausted,
            (type(self), self.attempts, self.last_cause, self.url, self.reason),
        )


def _rebuild_exhausted(
    cls: type[RetriesExhausted],
    attempts: int,
    last_cause: BaseException | None,
    url: str,
    reason: str,
) -> RetriesExhausted:
    return cls(attempts, last_cause, url=url, reason=reason)


class InvalidRequestError(FastSSEError, ValueError):
    """The request cannot be sent as given (an unsupported scheme such as ``ftp://``, a
    malformed URL, an illegal header): asking again cannot help, so the stream fails at once.
    """


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _ResponseError(SSEError):
    """An error about a response, which it keeps (``response``, ``request``) like httpx's."""

    def __init__(self, message: str, *, response: httpx.Response | None, body: bytes) -> None:
        super().__init__(message, request=getattr(response, "request", None))
        self.response = response
        self.status_code = response.status_code if response is not None else 0
        self.body = body

    def __reduce__(self) -> tuple[Any, ...]:
        # The response and request are live objects of a connection: not sent along.
        state = {k: v for k, v in self.__dict__.items() if k not in ("response", "_request")}
        return (_rebuild, (type(self), self.args, state))


def _rebuild(cls: type[_ResponseError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state, response=None, _request=None)
    return error


class UnexpectedStatusError(_ResponseError):
    """The server answered with a status that is not an event stream (a 4xx, a 5xx, ...).

    ``body`` holds the first bytes of the response body, which usually say why.
    """


class ContentTypeError(_ResponseError):
    """The server answered 2xx, but not with ``200`` and ``Content-Type: text/event-stream``."""

    def __init__(
        self, message: str, *, response: httpx.Response | None, content_type: str, body: bytes
    ) -> None:
        super().__init__(message, response=response, body=body)
        self.content_type = content_type


class StreamInterruptedError(SSEError):
    """A stream that does not reconnect (a POST, by default) broke before its end, or got no
    response at all.

    ``response`` is the response whose body broke, when there was one.
    """

    response: httpx.Response | None = None
