"""Retries before the first byte, as the official OpenAI and Anthropic SDKs make them: which
answers are retried and how long to wait. No I/O, no clock of its own."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any, Callable

from fastsse._policy import parse_retry_after

__all__ = ["DEFAULT_MAX_RETRIES", "Backoff", "retry_status", "sdk_backoff", "server_delay"]

#: As the SDKs: a request is tried at most three times.
DEFAULT_MAX_RETRIES = 2
#: The SDKs' backoff: 0.5 s, doubling, at most 8 s, each shortened by up to a quarter.
INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
#: A server's Retry-After above this is not waited for (the SDKs' bound): the backoff is.
MAX_SERVER_DELAY = 60.0

#: The delay before retry ``attempt`` (0 for the first retry), in seconds.
Backoff = Callable[[int], float]


def sdk_backoff(attempt: int) -> float:
    """The official SDKs' wait before retry ``attempt`` (counted from 0)."""
    delay = min(INITIAL_DELAY * 2.0 ** min(attempt, 16), MAX_DELAY)
    return delay * (1 - 0.25 * random.random())


def retry_status(status: int, headers: Mapping[str, str]) -> bool:
    """Whether an answer with ``status`` is worth asking again: 408, 409, 429 and 5xx (529,
    Anthropic's "overloaded", among them), unless the server says otherwise with
    ``x-should-retry`` (which the SDKs honour)."""
    should = headers.get("x-should-retry", "").strip().lower()
    if should == "true":
        return True
    if should == "false":
        return False
    return status in (408, 409, 429) or status >= 500


def server_delay(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """How long the server asks to wait: ``retry-after-ms`` (OpenAI's), else ``Retry-After``
    (seconds or an HTTP date); None when it asks nothing usable or more than 60 s."""
    delay: float | None = None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        delay = _seconds(milliseconds, scale=1000.0)
    if delay is None:
        value = headers.get("retry-after")
        if value is not None:
            delay = _seconds(value, scale=1.0)
            if delay is None:
                delay = parse_retry_after(value, now=now)
    if delay is None or not 0 <= delay <= MAX_SERVER_DELAY:
        return None
    return delay


def _seconds(value: str, *, scale: float) -> float | None:
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number / scale if math.isfinite(number) else None


def wait_before(attempt: int, headers: Mapping[str, str] | None, backoff: Backoff) -> float:
    """The wait before retry ``attempt``: what the server asked for, else ``backoff``'s."""
    asked = server_delay(headers) if headers is not None else None
    return backoff(attempt) if asked is None else asked


def check_retries(max_retries: Any, backoff: Any) -> None:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0 (0: never retry), got {max_retries!r}")
    if not callable(backoff):
        raise TypeError(
            f"backoff must be a function of the retry number returning seconds, got {backoff!r}"
        )
