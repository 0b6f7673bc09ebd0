"""One LLM call: the request, its retries before the first byte, the response read through the
protocol core (``fastsse.protocol.StreamMachine``, as a stream that does not reconnect), the
format's events and the result. :class:`_Call` decides, without I/O; :class:`LLMStream` and
:class:`AsyncLLMStream` only move bytes and wait."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional, Protocol, TypedDict, Union

import anyio

from fastsse import _json
from fastsse._errors import ContentTypeError, LLMError, StreamInterruptedError
from fastsse._fastsse import Event
from fastsse._io._async.flavour import Closing
from fastsse._io.clients import accepts, classes, classify, library_of, response_socket, shutdown
from fastsse._io.http import ASYNC_CLIENTS, SYNC_CLIENTS, abody, add_cookies, body
from fastsse.llm._result import Builder, Result, not_json
from fastsse.llm._retry import (
    DEFAULT_MAX_RETRIES,
    Backoff,
    check_retries,
    retry_status,
    sdk_backoff,
    wait_before,
)
from fastsse.protocol import Fault, Send, StreamMachine, Verdict, redact, redact_url

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Generator

    from fastsse.llm._formats import StreamFormat

__all__ = ["AsyncLLMStream", "LLMStream", "RequestOptions"]

logger = logging.getLogger("fastsse")

#: How much of an error response's body is read (and kept in ``LLMError.body``).
MAX_ERROR_BODY = 64 * 1024
#: An answer's event is never this large; past it the stream fails (EventTooLargeError)
#: rather than hold an unbounded event in memory.
MAX_EVENT_SIZE = 64 * 1024 * 1024

#: ``httpx.Client`` or ``httpx2.Client`` (``AsyncClient`` for the async methods).
Client = Any


class TimeoutLike(Protocol):
    """``httpx.Timeout`` or ``httpx2.Timeout``."""

    @property
    def connect(self) -> float | None: ...
    @property
    def read(self) -> float | None: ...
    @property
    def write(self) -> float | None: ...
    @property
    def pool(self) -> float | None: ...


class AuthLike(Protocol):
    """``httpx.Auth`` or ``httpx2.Auth``."""

    def auth_flow(self, request: Any) -> Generator[Any, Any, None]: ...


QueryParams = Union[Mapping[str, Any], Sequence[tuple[str, Any]], str, bytes, None]
Headers = Union[
    Mapping[str, str],
    Mapping[bytes, bytes],
    Sequence[tuple[str, str]],
    Sequence[tuple[bytes, bytes]],
]
Cookies = Union[Mapping[str, str], CookieJar, Sequence[tuple[str, str]]]
Content = Union[str, bytes, Iterable[bytes], AsyncIterable[bytes]]
Files = Union[Mapping[str, Any], Sequence[tuple[str, Any]]]
Auth = Union[tuple[Union[str, bytes], Union[str, bytes]], Callable[[Any], Any], AuthLike, None]
Timeout = Union[
    float,
    None,
    tuple[Optional[float], Optional[float], Optional[float], Optional[float]],
    TimeoutLike,
]


class RequestOptions(TypedDict, total=False):
    """The keywords of every ``fastsse.llm`` call: those of httpx's ``client.stream()``, the
    method (POST), and the retries before the first byte."""

    method: str
    params: QueryParams
    headers: Headers | None
    cookies: Cookies | None
    content: Content | None
    data: Mapping[str, Any] | None
    files: Files | None
    json: Any
    auth: Auth
    follow_redirects: bool
    timeout: Timeout
    extensions: Mapping[str, Any] | None
    #: Retries of a request that got no answer or a retryable status (2, as the SDKs).
    max_retries: int
    #: The wait before retry n (from 0), in seconds, when the server asks for none.
    backoff: Backoff


#: The keywords that go to ``client.build_request()``; ``auth`` and ``follow_redirects`` go
#: to ``client.send()``, ``cookies`` are merged with the client's.
_BUILD = frozenset({"params", "content", "data", "files", "json", "timeout", "extensions"})
_SEND = frozenset({"auth", "follow_redirects"})
_OURS = frozenset({"method", "headers", "cookies", "max_retries", "backoff"})


#: Failures before any response that asking again cannot help: our own request is at fault,
#: or the server's redirects do not end (each retry would follow them again, re-sending the
#: request every time).
_NOT_RETRIED = frozenset({"invalid_request", "redirect"})


class _Skip:
    """What a format's decoder returns for an event that carries nothing (a ping, [DONE])."""


SKIP: Any = _Skip()


class _Call:
    """One call's decisions, without I/O: each attempt's request (a fresh StreamMachine that
    does not reconnect: once a stream's answer has begun it is never asked for again), whether
    to retry before the first byte and how long to wait, the verdict on the response, the
    format's values out of the body's bytes, and how it ended."""

    def __init__(
        self, fmt: StreamFormat, client: Client, url: Any, options: Mapping[str, Any], *, sync: bool
    ) -> None:
        wanted = SYNC_CLIENTS if sync else ASYNC_CLIENTS
        if not accepts(client, wanted):
            other = "stream" if not sync else "astream"
            raise TypeError(
                f"client must be an httpx or httpx2 {wanted[0].__name__}, not "
                f"{type(client).__name__} (use {other}() and its kin for this client)"
            )
        unknown = set(options) - _BUILD - _SEND - _OURS
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        self.fmt = fmt
        self.client = client
        library = library_of(client)
        self.url = url
        self.method: str = options.get("method", "POST")
        self.max_retries: int = options.get("max_retries", DEFAULT_MAX_RETRIES)
        self.backoff: Backoff = options.get("backoff", sdk_backoff)
        check_retries(self.max_retries, self.backoff)
        headers = options.get("headers")
        self.headers: list[tuple[bytes, bytes]] = (
            [] if headers is None else library.Headers(headers).raw
        )
        self.cookies = options.get("cookies")
        self.build_options = {key: value for key, value in options.items() if key in _BUILD}
        self.send_options = {key: value for key, value in options.items() if key in _SEND}
        self.read_timeout = _read_timeout(options.get("timeout", client.timeout))
        #: What the request failed with at the end, as the machine described it.
        self.fault: Fault | None = None
        self.machine: StreamMachine | None = None
        #: The call in messages (logs, errors): its URL's secrets (``?key=`` of Gemini's API)
        #: as ``[secure]``, as every stream shows them (``fastsse.protocol.redact_url``).
        self.what = f"{self.method.upper()} {redact_url(url)}"
        #: Retries made so far.
        self.retries = 0
        self.response: Any = None
        self.builder: Builder = fmt.builder()
        #: Events received (in the response being read).
        self.events = 0
        #: The format saw the answer's end.
        self.done = False
        self.result: Result | None = None
        #: What reading the answer failed with: raised again by every later read.
        self.failure: Exception | None = None
        #: close() came from another thread or task while this one read.
        self.closed_while_reading = False
        self._reading = False
        #: What reading the body raises when the connection fails: the client library's errors.
        self.http_errors = classes("HTTPError")

    # -- before the first byte ----------------------------------------------------------------

    def request(self) -> Any:
        """The request of the next attempt."""
        machine = self.machine = StreamMachine(
            self.url,
            method=self.method,
            headers=self.headers,
            last_event_id="",
            retry=None,
            reconnect=False,
            read_timeout=self.read_timeout,
            max_event_size=MAX_EVENT_SIZE,
            on_oversize="error",
            on_fault=self._on_fault,
        )
        self.response = None
        action = machine.next_action()
        assert isinstance(action, Send), action  # A fresh machine always sends first.
        client = self.client
        request = client.build_request(
            action.method, action.url, headers=action.headers, **self.build_options
        )
        if self.cookies is not None:
            add_cookies(client, request, self.cookies)
        return request

    def _on_fault(self, fault: Fault, delay: float | None) -> None:
        self.fault = fault

    def no_response(self, error: Exception) -> float:
        """The attempt got no response: the wait before retrying it, or raises."""
        kind = classify(error)
        if kind is None:
            if not isinstance(error, self.http_errors):
                raise error  # Not the connection's: the caller's auth or event hook, say.
            kind = "connect"  # An event hook's HTTPStatusError, say: not worth asking again.
        elif kind not in _NOT_RETRIED and self.retries < self.max_retries:
            return self._retry(self.shown(f"{type(error).__name__}: {error}"), None)
        machine = self.machine
        assert machine is not None
        machine.failed(kind, error)
        tries = self.retries + 1
        attempts = f"{tries} attempt{'s' if tries > 1 else ''}"
        raise self._final_error(f"{self.what}: no response after {attempts}") from error

    def accept(self, response: Any) -> bool:
        """The response's headers arrived: whether its body is the stream."""
        machine = self.machine
        assert machine is not None
        self.response = response
        self.what = f"{self.method.upper()} {redact_url(response.url)}"
        self._reading = True
        return machine.response(response) is Verdict.STREAM

    def refused(self, response: Any, body: bytes) -> float:
        """The first bytes of a response that is not a stream: the wait before retrying the
        request, or raises the error it deserves."""
        self._end_response()
        status = response.status_code
        if status >= 400 and self.retries < self.max_retries and _retryable(response):
            return self._retry(f"answered {status} {response.reason_phrase}", response.headers)
        raise self._refusal(response, body)

    def _retry(self, why: str, headers: Any) -> float:
        delay = wait_before(self.retries, headers, self.backoff)
        self.retries += 1
        logger.warning(
            "%s %s; retry %d of %d in %.2f s",
            self.what,
            why,
            self.retries,
            self.max_retries,
            delay,
        )
        return delay

    def _refusal(self, response: Any, body: bytes) -> Exception:
        status = response.status_code
        text = body[:MAX_ERROR_BODY].decode("utf-8", "replace")
        error = _json_or_none(text)
        answered = f"{self.what} answered {status} {response.reason_phrase}".rstrip()
        details = error_object(error)
        if status >= 300 or details is not None:
            details = details or {}
            message = self.shown(_text(details.get("message")) or text.strip() or "(empty body)")
            return LLMError(
                f"{answered}: {message}",
                message=message,
                status_code=status,
                type=_error_type(details),
                code=_text(details.get("code")),
                body=text,
                error=error,
            )
        content_type = response.headers.get("content-type", "")
        hint = f" (is {self.fmt.streams_when}?)" if "json" in content_type else ""
        return ContentTypeError(
            f"{answered} with Content-Type {content_type!r}, not an event stream{hint}",
            response=response,
            content_type=content_type,
            body=body[:MAX_ERROR_BODY],
        )

    # -- the body ---------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[tuple[Any, str | None]]:
        """A chunk of the body: each value the format decoded, with its text delta."""
        machine = self.machine
        assert machine is not None
        decode = self.fmt.decode
        add = self.builder.add
        values = []
        for event in machine.feed(chunk):
            self.events += 1
            value = decode(event, self)
            if value is not SKIP:
                values.append((value, add(value)))
            if self.done and self.fmt.stops_at_end:
                break  # Whatever follows the end marker is not part of the answer.
        return values

    @property
    def over(self) -> bool:
        """The answer ended at its end marker: stop reading."""
        return self.done and self.fmt.stops_at_end

    def after_chunk(self) -> None:
        """The chunk's values were handed out: now the error it carried, if any."""
        machine = self.machine
        assert machine is not None
        if machine.has_deferred_work:
            machine.raise_deferred()

    def finish(self) -> None:
        """The answer's end marker came: the result."""
        self._end_response()
        self.result = self.builder.result()

    def broke(self, error: Exception) -> NoReturn:
        """Reading the body failed."""
        kind = classify(error)
        if kind is None:
            if not isinstance(error, self.http_errors):
                raise error
            kind = "broken"  # A body that cannot be decoded (DecodingError) is as broken.
        machine = self.machine
        assert machine is not None
        machine.failed(kind, error)
        self._end_response()
        raise self._final_error(self._incomplete("broke")) from error

    def ended(self) -> None:
        """The body ended cleanly: the result, or raises if the answer is incomplete."""
        machine = self.machine
        assert machine is not None
        machine.ended()
        self._end_response()
        try:
            machine.next_action()  # STOP, or raises: the body ended in the middle of an event.
        except StreamInterruptedError as cut:
            if not self.fmt.is_whole(self):
                raise StreamInterruptedError(
                    f"{self._incomplete('ended in the middle of an event')}: the answer is "
                    "incomplete"
                ) from cut
        if not self.fmt.is_whole(self):
            raise StreamInterruptedError(f"{self._incomplete('ended')}: the answer is incomplete")
        self.result = self.builder.result()

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Around the reading of the body: what it fails with is kept in ``failure``."""
        try:
            yield
        except Exception as error:
            self.failure = error
            raise

    def _incomplete(self, how: str) -> str:
        if self.closed_while_reading:
            how = "was closed"
        return (
            f"{self.what}: the stream {how} before {self.fmt.end_marker}, after {self.events} "
            "events"
        )

    def _final_error(self, words: str) -> StreamInterruptedError:
        """Asks the machine what follows a failure: a stream that does not reconnect raises
        its final error, which is said here in the words of an LLM call."""
        machine = self.machine
        assert machine is not None
        try:
            machine.next_action()
        except StreamInterruptedError as final:
            fault = self.fault
            detail = fault.message if fault is not None else str(final)
            suffix = ": the answer is incomplete" if self.response is not None else ""
            error = StreamInterruptedError(f"{words} ({detail}){suffix}")
            error.response = final.response
            return error
        raise AssertionError("a stream that does not reconnect never sends twice")

    def shown(self, text: str) -> str:
        """``text`` from elsewhere (a client library's error, a server's message) as a message
        shows it: the secrets of the call's URL, and of the response's, as ``[secure]``."""
        text = redact(text, self.url)
        return text if self.response is None else redact(text, self.response.url)

    def _end_response(self) -> None:
        if self._reading:
            self._reading = False
            assert self.machine is not None
            self.machine.end_response()

    def close(self) -> None:
        machine = self.machine
        if machine is not None:
            self._end_response()
            machine.close()

    # -- for the formats ----------------------------------------------------------------------

    def loads(self, event: Event) -> Any:
        try:
            return _json.loads(event.data)
        except ValueError as error:
            raise not_json(f"{self.what}: event {self.events} is", event.data, error) from error

    def server_error(self, event: Event, details: Mapping[str, Any], value: Any) -> LLMError:
        message = self.shown(_text(details.get("message")) or event.data)
        status = details.get("status")
        return LLMError(
            f"{self.what}: the server reported an error mid-stream: {message}",
            message=message,
            status_code=status if isinstance(status, int) else None,
            type=_error_type(details),
            code=_text(details.get("code")),
            body=event.data,
            error=value,
        )


def _retryable(response: Any) -> bool:
    return retry_status(response.status_code, response.headers)


def _read_timeout(timeout: Any) -> float | None:
    """The read timeout of a ``timeout=`` value (or a client's ``Timeout``): for messages."""
    if isinstance(timeout, tuple) and len(timeout) == 4:
        timeout = timeout[1]
    read = getattr(timeout, "read", timeout)
    return float(read) if isinstance(read, (int, float)) else None


def _json_or_none(text: str) -> Any:
    try:
        return _json.loads(text)
    except ValueError:
        return None


def error_object(value: Any) -> Mapping[str, Any] | None:
    """The error object of an error body or event: ``{"error": {...}}`` (OpenAI, Anthropic,
    Gemini, in a list for Gemini's JSON arrays), ``{"error": "a message"}``, vLLM's and other
    OpenAI-compatible servers' ``{"object": "error", "message": ...}``, or a Responses
    ``{"type": "error", "message": ...}``."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, Mapping):
        return None
    error = value.get("error")
    if isinstance(error, Mapping):
        return error
    if isinstance(error, str) and error:
        return {"message": error}
    for key in ("object", "type"):
        if value.get(key) == "error":  # This key names the event, not the error.
            return {name: item for name, item in value.items() if name != key}
    return None


def _error_type(details: Mapping[str, Any]) -> str | None:
    """The error's type: ``type`` (OpenAI, Anthropic) or Gemini's ``status`` word."""
    kind = details.get("type")
    if kind is None and isinstance(details.get("status"), str):
        kind = details["status"]
    return _text(kind)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _read_head(response: Any) -> bytes:
    """The first bytes of an error response's body (it only explains the error)."""
    head = b""
    with contextlib.suppress(*classes("HTTPError")):
        for chunk in response.iter_bytes():
            head += chunk
            if len(head) >= MAX_ERROR_BODY:
                break
    return head


async def _aread_head(response: Any) -> bytes:
    head = b""
    with contextlib.suppress(*classes("HTTPError")):
        async for chunk in response.aiter_bytes():
            head += chunk
            if len(head) >= MAX_ERROR_BODY:
                break
    return head


_NOT_OPEN = (
    "the stream is not open: use it in a with block (with fmt.stream(...) as s), which sends "
    "the request"
)
_NOT_OVER = (
    "the stream has not ended as it should yet: iterate events() or text() to the end, or call "
    "finish(), before reading result"
)
_CLOSED = "the stream was closed before its end: the answer is incomplete"
_ENTERED = "a stream is entered once (entering sent its request): call stream() again to ask again"


class _StreamBase:
    _call: _Call
    _response: Any = None
    _entered = False
    _closed = False

    def _enter(self) -> _Call:
        """The call, for a first entry; a second one would send the request again."""
        if self._entered or self._closed:
            raise RuntimeError(_ENTERED)
        self._entered = True
        return self._call

    def _readable(self) -> None:
        """Before reading: the error reading failed with is raised again, and a stream closed
        before its end is never read as if it had ended (no silent end)."""
        call = self._call
        if call.failure is not None:
            raise call.failure
        if self._closed and call.result is None:
            raise RuntimeError(_CLOSED)

    def _wake_reader(self) -> None:
        """close() while another thread or task reads the body: shuts the socket down, which
        ends that read (it raises StreamInterruptedError, "was closed"); the reader closes the
        rest when it leaves its block (closing it here would pull the state from under it)."""
        self._call.closed_while_reading = True
        shutdown(response_socket(self._response))

    @property
    def response(self) -> Any:
        """The response (``httpx.Response`` or httpx2's), its body being the stream."""
        if self._response is None:
            raise RuntimeError(_NOT_OPEN)
        return self._response

    @property
    def result(self) -> Result:
        """The whole answer; RuntimeError until the stream has ended as it should, or the error
        it failed with."""
        if self._call.result is None:
            self._readable()
            raise RuntimeError(_NOT_OVER)
        return self._call.result


class LLMStream(_StreamBase):
    """One streamed LLM answer, from a sync client: ``with llm.<format>.stream(client, url,
    json=...) as s``.

    Entering sends the request (retrying it before the first byte, as the official SDKs
    do); then ``s.response`` is the response, its status and headers (``x-request-id``, rate
    limits) there before the first token. ``s.events()`` yields each event's decoded JSON,
    ``s.text()`` the text deltas of the first choice; both read the same stream, once. After
    the end, ``s.result`` is the whole answer (:class:`Result`); ``s.finish()`` reads the
    rest and returns it. Leaving the block closes the response.

    Never a silent end: once reading failed, every later read (``events()``, ``text()``,
    ``finish()``, ``result``) raises that error again; a stream closed before its end raises
    RuntimeError when read. A stream is entered once: entering sends the request.
    """

    def __init__(self, fmt: StreamFormat, client: Client, url: Any, options: RequestOptions):
        self._call = _Call(fmt, client, url, options, sync=True)
        self._pairs: Generator[tuple[Any, str | None], None, None] | None = None

    def __enter__(self) -> LLMStream:
        call = self._enter()
        send = call.client.send
        while True:
            try:
                response = send(call.request(), stream=True, **call.send_options)
            except Exception as error:
                time.sleep(call.no_response(error))
                continue
            if call.accept(response):
                self._response = response
                return self
            try:
                head = _read_head(response)
            finally:
                response.close()
            time.sleep(call.refused(response, head))

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the response (an answer not read to its end is dropped); from any thread: a
        read in another thread then raises StreamInterruptedError."""
        self._closed = True
        if self._pairs is not None:
            try:
                self._pairs.close()
            except ValueError:  # "generator already executing": another thread reads.
                self._wake_reader()
                return
        self._call.close()
        if self._response is not None:
            self._response.close()

    def _shared(self) -> Iterator[tuple[Any, str | None]]:
        self._readable()
        if self._pairs is None:
            self._pairs = self._read(self.response)
        return self._pairs

    def _read(self, response: Any) -> Generator[tuple[Any, str | None], None, None]:
        call = self._call
        read = iter(body(response)).__next__
        with call.recording():
            while True:
                try:
                    chunk = read()
                except StopIteration:
                    break
                except Exception as error:
                    call.broke(error)
                yield from call.feed(chunk)
                if call.over:
                    call.finish()
                    return
                call.after_chunk()
            call.ended()

    def events(self) -> Iterator[Any]:
        """Each event's decoded JSON, to the answer's end (``[DONE]`` and pings left out)."""
        for value, _ in self._shared():
            yield value
        self._readable()  # Closed (by another thread, say) before the end: never a silent end.

    def text(self) -> Iterator[str]:
        """The text deltas of the first choice, as they arrive (empty ones left out)."""
        for _, text in self._shared():
            if text:
                yield text
        self._readable()

    def finish(self) -> Result:
        """Reads the rest of the stream; the whole answer."""
        for _ in self._shared():
            pass
        return self.result  # Raises if it was closed before the end.


class AsyncLLMStream(_StreamBase):
    """:class:`LLMStream` for an async client: ``async with llm.<format>.astream(client, url,
    json=...) as s``, ``async for`` over ``s.events()`` / ``s.text()``, ``await s.finish()``.
    ``s.close()`` is a plain method that any thread or task may call; ``await s.aclose()``
    (or ``await s.close()``) also closes the response."""

    def __init__(self, fmt: StreamFormat, client: Client, url: Any, options: RequestOptions):
        self._call = _Call(fmt, client, url, options, sync=False)
        self._pairs: AsyncGenerator[tuple[Any, str | None], None] | None = None

    async def __aenter__(self) -> AsyncLLMStream:
        call = self._enter()
        send = call.client.send
        while True:
            try:
                response = await send(call.request(), stream=True, **call.send_options)
            except Exception as error:
                await anyio.sleep(call.no_response(error))
                continue
            if call.accept(response):
                self._response = response
                return self
            try:
                head = await _aread_head(response)
            finally:
                await response.aclose()
            await anyio.sleep(call.refused(response, head))

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def close(self) -> Awaitable[None]:
        """Closes the stream now; a plain method, safe from any thread or task: a read in
        progress raises StreamInterruptedError at once, and no value is handed out after it
        (a later read raises). Awaiting what it returns is ``aclose()``, which also closes the
        response; without the await, leaving the ``async with`` block does."""
        self._closed = True
        if getattr(self._pairs, "ag_running", False):  # A read is in progress: end it.
            self._wake_reader()
        return Closing(self.aclose)

    async def aclose(self) -> None:
        """Closes the response (an answer not read to its end is dropped); from another task
        too: its read then raises StreamInterruptedError."""
        self._closed = True
        if self._pairs is not None:
            if getattr(self._pairs, "ag_running", False):  # Another task reads.
                self._wake_reader()
                return
            await self._pairs.aclose()
        self._call.close()
        if self._response is not None:
            await self._response.aclose()

    def _shared(self) -> AsyncIterator[tuple[Any, str | None]]:
        self._readable()
        if self._pairs is None:
            self._pairs = self._read(self.response)
        return self._pairs

    async def _read(self, response: Any) -> AsyncGenerator[tuple[Any, str | None], None]:
        call = self._call
        chunks: Any = abody(response)  # httpx hands out an async generator
        try:
            with call.recording():
                while True:
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        break
                    except Exception as error:
                        call.broke(error)
                    for pair in call.feed(chunk):
                        yield pair
                        if self._closed:  # close() from another thread: nothing more.
                            return
                    if call.over:
                        call.finish()
                        return
                    call.after_chunk()
                call.ended()
        finally:
            await chunks.aclose()

    async def events(self) -> AsyncIterator[Any]:
        """The async ``LLMStream.events()``."""
        async for value, _ in self._shared():
            yield value
        self._readable()

    async def text(self) -> AsyncIterator[str]:
        """The async ``LLMStream.text()``."""
        async for _, text in self._shared():
            if text:
                yield text
        self._readable()

    async def finish(self) -> Result:
        """Reads the rest of the stream; the whole answer."""
        async for _ in self._shared():
            pass
        return self.result
