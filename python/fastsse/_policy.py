"""Sans-I/O reconnect policy: exponential backoff, full jitter, ``retry:``, Retry-After, reset.

Nothing here sleeps, opens sockets or touches an event loop. The stream asks a :class:`Backoff`
how long to wait and does the waiting itself, so the policy is unit-tested with a fake clock.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone

from fastsse._errors import RetriesExhausted

__all__ = ["Backoff", "RetriesExhausted", "Retry", "parse_retry_after"]

# RFC 9111 §1.2.2: a delta-seconds value too large to represent is taken as 2**31 seconds.
_DELTA_SECONDS_OVERFLOW = 2**31


def _check_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")


def _check_finite(name: str, value: float) -> None:
    _check_number(name, value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


@dataclass(frozen=True)
class Retry:
    """Immutable reconnect configuration; :meth:`start` makes the per-stream :class:`Backoff`.

    All durations are seconds. The delay before reconnect attempt ``n`` (counting from 0 since
    the last reset) is ``base * multiplier**n``, capped at ``max_delay``, then fully jittered
    (a uniform draw in ``[0, delay]``) when ``jitter`` is on. ``base`` is ``initial`` until the
    server sends ``retry:``; from then on no delay is shorter than ``min_server_retry``, jitter
    included, so that ``retry: 0`` cannot cause a reconnect storm.

    - ``initial`` (1 s), ``multiplier`` (1.5), ``max_delay`` (60 s): the exponential backoff.
    - ``jitter`` (True): full jitter, so that many clients of one server spread out.
    - ``reset_after``: a connection that stayed up this long resets the backoff even if it
      delivered no event (``inf``: never); one that delivered an event resets it anyway.
    - ``min_server_retry`` / ``max_server_retry``: bounds for the server's ``retry:`` value, so
      ``retry: 0`` cannot cause a reconnect storm and a huge value cannot park the stream.
    - ``max_attempts``: consecutive reconnects that deliver no event before
      :class:`RetriesExhausted` (``None``: retry forever; ``0``: never reconnect).
    - ``max_retry_after``: cap on an HTTP ``Retry-After`` wait (see :meth:`Backoff.next_delay`).
    """

    initial: float = 1.0
    multiplier: float = 1.5
    max_delay: float = 60.0
    reset_after: float = 30.0
    min_server_retry: float = 0.5
    max_server_retry: float = 60.0
    max_attempts: int | None = None
    jitter: bool = True
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        for name in ("initial", "multiplier", "max_delay", "min_server_retry", "max_server_retry"):
            _check_finite(name, getattr(self, name))
        _check_finite("max_retry_after", self.max_retry_after)
        _check_number("reset_after", self.reset_after)
        if not isinstance(self.jitter, bool):
            raise TypeError(f"jitter must be True or False, got {self.jitter!r}")
        if math.isnan(self.reset_after):
            raise ValueError("reset_after must be a number, got nan")
        if self.initial <= 0:
            raise ValueError(f"initial must be > 0, got {self.initial!r}")
        if self.multiplier < 1:
            raise ValueError(
                f"multiplier must be >= 1 (1 = constant delay), got {self.multiplier!r}"
            )
        if self.max_delay < self.initial:
            raise ValueError(
                f"max_delay ({self.max_delay!r}) must be >= initial ({self.initial!r})"
            )
        if self.reset_after < 0:
            raise ValueError(f"reset_after must be >= 0, got {self.reset_after!r}")
        if self.min_server_retry <= 0:
            raise ValueError(
                f"min_server_retry must be > 0 (it prevents reconnect storms on 'retry: 0'), "
                f"got {self.min_server_retry!r}"
            )
        if self.max_server_retry < self.min_server_retry:
            raise ValueError(
                f"max_server_retry ({self.max_server_retry!r}) must be >= "
                f"min_server_retry ({self.min_server_retry!r})"
            )
        if self.max_attempts is not None:
            if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
                raise TypeError(f"max_attempts must be an int or None, got {self.max_attempts!r}")
            if self.max_attempts < 0:
                raise ValueError(f"max_attempts must be >= 0 or None, got {self.max_attempts!r}")
        if self.max_retry_after < 0:
            raise ValueError(f"max_retry_after must be >= 0, got {self.max_retry_after!r}")

    def start(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> Backoff:
        """Return a fresh :class:`Backoff` for one stream."""
        return Backoff(self, clock=clock, rng=rng)


class Backoff:
    """Mutable reconnect state of one stream under a :class:`Retry` policy.

    ``clock`` returns seconds (monotonic); ``rng`` returns a float in ``[0, 1)``. Both are
    injectable so that tests are deterministic.
    """

    __slots__ = (
        "_base",
        "_clock",
        "_connected_at",
        "_failures",
        "_floor",
        "_policy",
        "_rng",
    )

    def __init__(
        self,
        policy: Retry,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._rng = rng
        #: Consecutive reconnects that delivered no event: what max_attempts bounds, and the
        #: exponent of the delay's growth (both start over when a connection delivers).
        self._failures = 0
        self._base = policy.initial
        #: No delay below this (after jitter): min_server_retry once the server sent retry:.
        self._floor = 0.0
        self._connected_at: float | None = None

    @property
    def policy(self) -> Retry:
        return self._policy

    @property
    def attempts(self) -> int:
        """Consecutive reconnects that delivered no event (what ``max_attempts`` bounds)."""
        return self._failures

    @property
    def delay_base(self) -> float:
        """Delay of the first reconnect after a reset: ``initial`` or the clamped ``retry:``."""
        return self._base

    def connected(self) -> None:
        """Record that a connection was established (the response was accepted)."""
        self._connected_at = self._clock()

    def progressed(self) -> None:
        """The connection delivered an event: the backoff starts over, as a browser's does.

        The next delay is the base one again (the server's ``retry:``, or ``initial``), and
        ``max_attempts`` counts from zero: the delay grows only over consecutive attempts that
        deliver nothing. (A server that ends every response cleanly after a few events, such
        as one that rotates its connections, is reconnected to after its ``retry:`` each time.)
        """
        self._failures = 0

    def server_retry(self, ms: int) -> None:
        """Apply a ``retry:`` field (milliseconds): its clamped value becomes the base delay.

        Like a browser, the value persists for the rest of the stream, across resets.
        """
        if ms < 0:
            raise ValueError(f"retry must be >= 0 ms, got {ms!r}")
        policy = self._policy
        # Clamp in the integer domain: the parser passes arbitrarily large ints, and
        # ``int / 1000`` raises OverflowError past ~1e308.
        ms = min(ms, math.ceil(policy.max_server_retry * 1000))
        self._base = min(max(ms / 1000, policy.min_server_retry), policy.max_server_retry)
        self._floor = policy.min_server_retry

    def reset(self) -> None:
        """Forget past failures: the next delay is the base delay again."""
        self._failures = 0
        self._connected_at = None

    def next_delay(
        self, cause: BaseException | None = None, *, retry_after: float | None = None
    ) -> float:
        """The connection ended or could not be made: return seconds to wait before reconnecting.

        If the connection recorded by :meth:`connected` lived at least ``reset_after``, the
        backoff starts over first. ``retry_after`` (seconds, from a Retry-After header) is a
        floor on the delay, clamped to ``[0, max_retry_after]``; jitter never goes below it.

        Raises :class:`RetriesExhausted` (with ``cause`` as ``__cause__``) once ``max_attempts``
        consecutive reconnects have failed.
        """
        policy = self._policy
        if retry_after is not None and math.isnan(retry_after):
            raise ValueError("retry_after must be a number, got nan")
        if self._connected_at is not None:
            lived = self._clock() - self._connected_at
            self._connected_at = None
            if lived >= policy.reset_after:
                self._failures = 0
        if policy.max_attempts is not None and self._failures >= policy.max_attempts:
            raise RetriesExhausted(self._failures, cause)

        # A server-provided base above max_delay is honoured (it is already bounded by
        # max_server_retry); growth beyond it is not.
        cap = max(policy.max_delay, self._base)
        try:
            delay = min(self._base * policy.multiplier**self._failures, cap)
        except OverflowError:
            # Reached after ~1700 attempts at 1.5x with max_attempts=None.
            delay = cap
        if policy.jitter:
            delay = max(delay * min(max(self._rng(), 0.0), 1.0), self._floor)
        if retry_after is not None:
            delay = max(delay, min(max(retry_after, 0.0), policy.max_retry_after))
        self._failures += 1
        return delay


def parse_retry_after(value: str, *, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header into seconds to wait (``>= 0``), or ``None`` if invalid.

    Accepts delta-seconds (``"120"``) or an HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``,
    also the obsolete RFC 850 and asctime forms). ``now`` is the current Unix time, for tests.
    """
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(min(int(value), _DELTA_SECONDS_OVERFLOW))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        # TypeError is how Python < 3.10 reports an unparseable date.
        return None
    if when.tzinfo is None:
        # HTTP-dates are always UTC; the asctime form carries no zone.
        when = when.replace(tzinfo=timezone.utc)
    if now is None:
        now = time.time()
    return max(when.timestamp() - now, 0.0)
