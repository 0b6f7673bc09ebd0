"""Streaming LLM responses: OpenAI chat completions and Responses, Anthropic messages.

One object per wire format, each with the same six methods::

    import httpx
    from fastsse import llm

    with httpx.Client(timeout=60) as client:
        text = llm.openai_chat.complete(
            client, "https://api.openai.com/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "gpt-4o-mini", "stream": True, "messages": [...]},
            on_token=lambda token: print(token, end="", flush=True),
        )

``events()`` yields each event's decoded JSON, ``text()`` the text deltas, ``complete()`` returns
the whole text; ``aevents()``, ``atext()`` and ``acomplete()`` are the same for async clients.
The client is the caller's (``httpx`` or ``httpx2``, sync or async), with its timeouts; every
keyword ``client.stream()`` takes passes through. The request is sent once: a POST is never
re-sent. The stream ends at its format's end marker (``data: [DONE]``, ``response.completed``,
``message_stop``); an error the server reports raises :class:`LLMError`, and a stream that ends
or breaks before its end marker raises :class:`StreamInterruptedError`: never a truncated answer
returned as if it were whole.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import Any, Callable

from fastsse import _json
from fastsse._errors import ContentTypeError, LLMError, StreamInterruptedError
from fastsse._fastsse import Event, Parser
from fastsse._io.http import abody, body

__all__ = [
    "LLMError",
    "StreamFormat",
    "StreamInterruptedError",
    "anthropic",
    "openai_chat",
    "openai_responses",
]

#: How much of an error response's body is read (and kept in ``LLMError.body``).
_MAX_ERROR_BODY = 64 * 1024

OnToken = Callable[[str], Any]
OnComplete = Callable[[str], Any]
#: ``httpx.Client`` or ``httpx2.Client`` (``AsyncClient`` for the async methods).
Client = Any


class _Skip:
    """What a format's decoder returns for an event that carries nothing (a ping, [DONE])."""


_SKIP: Any = _Skip()


class StreamFormat:
    """One LLM API's streaming wire format: how it ends, how it reports errors, where its text
    deltas are. Use the instances: :data:`openai_chat`, :data:`openai_responses`,
    :data:`anthropic`."""

    #: Names the end marker in errors.
    end_marker = ""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<fastsse.llm.{self.name}>"

    # The format: one event in, its decoded JSON out (or _SKIP); sets ``state.done`` at the
    # end marker; raises LLMError for an error the server reports.

    def decode(self, event: Event, state: _State) -> Any:
        raise NotImplementedError

    def text_of(self, value: Any) -> str | None:
        """The text delta an event's decoded JSON carries, if any."""
        raise NotImplementedError

    # sync

    def events(
        self,
        client: Client,
        url: Any,
        *,
        method: str = "POST",
        headers: Any = None,
        **kwargs: Any,
    ) -> Generator[Any, None, None]:
        """Each event's decoded JSON, up to the end marker (``[DONE]`` is not yielded, the
        events that end the other formats are). ``kwargs`` go to ``client.stream()``:
        ``json``, ``params``, ``timeout``..."""
        with client.stream(method, url, headers=_accepting(headers), **kwargs) as response:
            state = _State(self, method, response)
            if not state.is_event_stream():
                state.refuse(_read_head(response))
            read = iter(body(response)).__next__
            while True:
                try:
                    chunk = read()
                except StopIteration:
                    break
                except state.read_errors as error:
                    raise state.interrupted(error) from error
                yield from state.feed(chunk)
                if state.done:
                    return
            state.finish()

    def text(self, client: Client, url: Any, **kwargs: Any) -> Generator[str, None, None]:
        """The text deltas, as they arrive (empty deltas left out)."""
        text_of = self.text_of
        events = self.events(client, url, **kwargs)
        try:
            for value in events:
                text = text_of(value)
                if text:
                    yield text
        finally:
            events.close()

    def complete(
        self,
        client: Client,
        url: Any,
        *,
        on_token: OnToken | None = None,
        on_complete: OnComplete | None = None,
        **kwargs: Any,
    ) -> str:
        """The whole text; ``on_token`` is called with each delta as it arrives and
        ``on_complete`` with the whole text once the stream has ended as it should."""
        parts = []
        for token in self.text(client, url, **kwargs):
            parts.append(token)
            if on_token is not None:
                on_token(token)
        text = "".join(parts)
        if on_complete is not None:
            on_complete(text)
        return text

    # async

    async def aevents(
        self,
        client: Client,
        url: Any,
        *,
        method: str = "POST",
        headers: Any = None,
        **kwargs: Any,
    ) -> AsyncGenerator[Any, None]:
        """The async ``events()``."""
        async with client.stream(method, url, headers=_accepting(headers), **kwargs) as response:
            state = _State(self, method, response)
            if not state.is_event_stream():
                state.refuse(await _aread_head(response))
            chunks: Any = abody(response)  # httpx hands out an async generator
            try:
                while True:
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        break
                    except state.read_errors as error:
                        raise state.interrupted(error) from error
                    for value in state.feed(chunk):
                        yield value
                    if state.done:
                        return
                state.finish()
            finally:
                await chunks.aclose()

    async def atext(self, client: Client, url: Any, **kwargs: Any) -> AsyncGenerator[str, None]:
        """The async ``text()``."""
        text_of = self.text_of
        events = self.aevents(client, url, **kwargs)
        try:
            async for value in events:
                text = text_of(value)
                if text:
                    yield text
        finally:
            await events.aclose()

    async def acomplete(
        self,
        client: Client,
        url: Any,
        *,
        on_token: OnToken | None = None,
        on_complete: OnComplete | None = None,
        **kwargs: Any,
    ) -> str:
        """The async ``complete()``; the callbacks may be plain functions or coroutine
        functions."""
        parts = []
        tokens = self.atext(client, url, **kwargs)
        try:
            async for token in tokens:
                parts.append(token)
                if on_token is not None:
                    await _maybe_await(on_token(token))
        finally:
            await tokens.aclose()
        text = "".join(parts)
        if on_complete is not None:
            await _maybe_await(on_complete(text))
        return text


def _read_head(response: Any) -> bytes:
    """The first bytes of an error response's body (it only explains the error)."""
    head = b""
    with contextlib.suppress(*_http_errors(response)):
        for chunk in response.iter_bytes():
            head += chunk
            if len(head) >= _MAX_ERROR_BODY:
                break
    return head


async def _aread_head(response: Any) -> bytes:
    head = b""
    with contextlib.suppress(*_http_errors(response)):
        async for chunk in response.aiter_bytes():
            head += chunk
            if len(head) >= _MAX_ERROR_BODY:
                break
    return head


async def _maybe_await(result: Any) -> None:
    if inspect.isawaitable(result):
        await result


def _accepting(headers: Any) -> Any:
    """The caller's headers, with ``Accept: text/event-stream`` unless they say otherwise."""
    if headers is None:
        return {"Accept": "text/event-stream"}
    items = list(headers.items() if isinstance(headers, Mapping) else headers)
    names = {(name.decode() if isinstance(name, bytes) else name).lower() for name, _ in items}
    return items if "accept" in names else [*items, ("Accept", "text/event-stream")]


class _State:
    """One response being read: the parser, the format's decoding, how it ends. No I/O."""

    def __init__(self, fmt: StreamFormat, method: str, response: Any) -> None:
        self.fmt = fmt
        self.response = response
        self.what = f"{method.upper()} {response.url}"
        self.parser = Parser()
        self.done = False
        self.events = 0
        #: What reading the body raises when the connection fails: the client library's errors.
        self.read_errors = _http_errors(response)

    def is_event_stream(self) -> bool:
        content_type = self.response.headers.get("content-type", "")
        media_type: str = content_type.partition(";")[0].strip().lower()
        return 200 <= self.response.status_code < 300 and media_type == "text/event-stream"

    def refuse(self, body: bytes) -> None:
        """Raises the error a response that is not an event stream deserves."""
        response = self.response
        status = response.status_code
        text = body[:_MAX_ERROR_BODY].decode("utf-8", "replace")
        error = _json_or_none(text)
        answered = f"{self.what} answered {status} {response.reason_phrase}".rstrip()
        if status >= 300 or _error_object(error) is not None:
            details = _error_object(error) or {}
            message = _text(details.get("message")) or text.strip() or "(empty body)"
            raise LLMError(
                f"{answered}: {message}",
                message=message,
                status_code=status,
                type=_text(details.get("type")),
                code=_text(details.get("code")),
                body=text,
                error=error,
            )
        content_type = response.headers.get("content-type", "")
        hint = ' (is "stream": true in the request?)' if "json" in content_type else ""
        raise ContentTypeError(
            f"{answered} with Content-Type {content_type!r}, not an event stream{hint}",
            response=response,
            content_type=content_type,
            body=body[:_MAX_ERROR_BODY],
        )

    def feed(self, chunk: bytes) -> list[Any]:
        decode = self.fmt.decode
        values = []
        for event in self.parser.feed(chunk):
            self.events += 1
            value = decode(event, self)
            if value is not _SKIP:
                values.append(value)
            if self.done:
                break  # Whatever follows the end marker is not part of the answer.
        return values

    def loads(self, event: Event) -> Any:
        try:
            return _json.loads(event.data)
        except ValueError as error:
            raise LLMError(
                f"{self.what}: event {self.events} is not valid JSON ({error}): "
                f"{event.data[:200]!r}",
                message=str(error),
                body=event.data,
            ) from error

    def server_error(self, event: Event, details: Mapping[str, Any], value: Any) -> LLMError:
        message = _text(details.get("message")) or event.data
        status = details.get("status")
        return LLMError(
            f"{self.what}: the server reported an error mid-stream: {message}",
            message=message,
            status_code=status if isinstance(status, int) else None,
            type=_text(details.get("type")),
            code=_text(details.get("code")),
            body=event.data,
            error=value,
        )

    def finish(self) -> None:
        """The body ended: an error unless the end marker came."""
        if not self.done:
            raise StreamInterruptedError(
                f"{self.what}: the stream ended before {self.fmt.end_marker}, after "
                f"{self.events} events: the answer is incomplete"
            )

    def interrupted(self, cause: BaseException) -> StreamInterruptedError:
        return StreamInterruptedError(
            f"{self.what}: the stream broke before {self.fmt.end_marker}, after {self.events} "
            f"events ({type(cause).__name__}: {cause}): the answer is incomplete"
        )


def _http_errors(response: Any) -> tuple[type[Exception], ...]:
    """The base error class of the response's library (httpx or httpx2): ``HTTPError``."""
    library = sys.modules.get(type(response).__module__.partition(".")[0])
    base = getattr(library, "HTTPError", None)
    if isinstance(base, type) and issubclass(base, Exception):
        return (base,)
    return (OSError,)  # pragma: no cover - a client library without HTTPError


def _json_or_none(text: str) -> Any:
    try:
        return _json.loads(text)
    except ValueError:
        return None


def _error_object(value: Any) -> Mapping[str, Any] | None:
    """The error object of an error body: ``{"error": {...}}`` (OpenAI, Anthropic) or a
    Responses ``{"type": "error", "message": ...}``."""
    if not isinstance(value, Mapping):
        return None
    error = value.get("error")
    if isinstance(error, Mapping):
        return error
    if isinstance(error, str) and error:
        return {"message": error}
    if value.get("type") == "error":  # Its "type" names the event, not the error.
        return {key: item for key, item in value.items() if key != "type"}
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _is_blank(data: str) -> bool:
    return not data or data.isspace()


class _OpenAIChat(StreamFormat):
    """OpenAI chat completions (and the many servers speaking it): ``data:`` JSON chunks,
    ``data: [DONE]`` at the end, an error as ``{"error": {...}}`` or ``event: error``."""

    end_marker = "data: [DONE]"

    def decode(self, event: Event, state: _State) -> Any:
        data = event.data
        if _is_blank(data):
            return _SKIP
        if data.startswith("[DONE]"):
            state.done = True
            return _SKIP
        value = state.loads(event)
        details = _error_object(value)
        if details is not None or event.event == "error":
            raise state.server_error(event, details or {}, value)
        return value

    def text_of(self, value: Any) -> str | None:
        if not isinstance(value, Mapping):
            return None
        for choice in value.get("choices") or ():
            if choice.get("index", 0) == 0:
                content = (choice.get("delta") or {}).get("content")
                return content if isinstance(content, str) else None
        return None


class _OpenAIResponses(StreamFormat):
    """The OpenAI Responses API: typed events (``response.output_text.delta``...), ending with
    ``response.completed`` or ``response.incomplete``; ``response.failed`` and ``error``
    events raise."""

    end_marker = "response.completed"
    _ENDS = frozenset({"response.completed", "response.incomplete"})

    def decode(self, event: Event, state: _State) -> Any:
        if _is_blank(event.data):
            return _SKIP
        value = state.loads(event)
        kind = value.get("type", event.event) if isinstance(value, Mapping) else event.event
        if kind == "error" or event.event == "error":
            raise state.server_error(event, _error_object(value) or {}, value)
        if kind == "response.failed":
            failed = (value.get("response") or {}).get("error") or {}
            raise state.server_error(event, failed, value)
        if kind in self._ENDS:
            state.done = True
        return value

    def text_of(self, value: Any) -> str | None:
        if isinstance(value, Mapping) and value.get("type") == "response.output_text.delta":
            delta = value.get("delta")
            return delta if isinstance(delta, str) else None
        return None


class _Anthropic(StreamFormat):
    """Anthropic messages: typed events from ``message_start`` to ``message_stop``; ``ping``
    skipped; an ``error`` event raises."""

    end_marker = "message_stop"

    def decode(self, event: Event, state: _State) -> Any:
        if event.event == "ping" or _is_blank(event.data):
            return _SKIP
        value = state.loads(event)
        kind = value.get("type", event.event) if isinstance(value, Mapping) else event.event
        if kind == "ping":
            return _SKIP
        if kind == "error" or event.event == "error":
            raise state.server_error(event, _error_object(value) or {}, value)
        if kind == "message_stop":
            state.done = True
        return value

    def text_of(self, value: Any) -> str | None:
        if isinstance(value, Mapping) and value.get("type") == "content_block_delta":
            delta = value.get("delta") or {}
            if delta.get("type") == "text_delta":
                text = delta.get("text")
                return text if isinstance(text, str) else None
        return None


#: OpenAI ``POST /v1/chat/completions`` with ``"stream": true``, and compatible servers.
openai_chat: StreamFormat = _OpenAIChat("openai_chat")
#: OpenAI ``POST /v1/responses`` with ``"stream": true``.
openai_responses: StreamFormat = _OpenAIResponses("openai_responses")
#: Anthropic ``POST /v1/messages`` with ``"stream": true``.
anthropic: StreamFormat = _Anthropic("anthropic")
