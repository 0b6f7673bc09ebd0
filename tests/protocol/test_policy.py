"""Unit tests of the sans-I/O reconnect policy, driven by a fake clock and a scripted rng."""

from __future__ import annotations

import dataclasses
import math
import pickle
import random
import re
import time
from collections.abc import Iterable
from typing import Any

import pytest
from fastsse._policy import Backoff, RetriesExhausted, Retry, parse_retry_after

NO_JITTER_SEQUENCE = [
    1.0,
    1.5,
    2.25,
    3.375,
    5.0625,
    7.59375,
    11.390625,
    17.0859375,
    25.62890625,
    38.443359375,
    57.6650390625,
    60.0,
    60.0,
    60.0,
]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ScriptedRng:
    def __init__(self, values: Iterable[float]) -> None:
        self._values = iter(values)

    def __call__(self) -> float:
        return next(self._values)


def start(clock: FakeClock | None = None, rng: Any = None, **kw: Any) -> Backoff:
    kw.setdefault("jitter", False)
    return Retry(**kw).start(
        clock=clock or FakeClock(),
        rng=rng if rng is not None else ScriptedRng([]),
    )


# --- exponential backoff ---------------------------------------------------------------


def test_backoff_sequence_without_jitter() -> None:
    backoff = start()
    delays = [backoff.next_delay() for _ in NO_JITTER_SEQUENCE]
    assert delays == pytest.approx(NO_JITTER_SEQUENCE)
    assert backoff.attempts == len(NO_JITTER_SEQUENCE)


def test_defaults() -> None:
    policy = Retry()
    assert (policy.initial, policy.multiplier, policy.max_delay) == (1.0, 1.5, 60.0)
    assert (policy.reset_after, policy.min_server_retry, policy.max_server_retry) == (
        30.0,
        0.5,
        60.0,
    )
    assert policy.max_attempts is None
    assert policy.jitter is True
    backoff = policy.start()
    assert backoff.attempts == 0
    assert backoff.delay_base == 1.0
    assert backoff.policy is policy


def test_multiplier_one_is_constant() -> None:
    backoff = start(initial=2.0, multiplier=1.0)
    assert [backoff.next_delay() for _ in range(5)] == [2.0] * 5


def test_backoff_can_be_built_directly() -> None:
    backoff = Backoff(Retry(jitter=False, initial=3.0, max_delay=5.0), clock=FakeClock())
    assert [backoff.next_delay() for _ in range(3)] == [3.0, 4.5, 5.0]


def test_manual_reset_restarts_the_sequence() -> None:
    backoff = start()
    for _ in range(4):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.next_delay() == 1.0


def test_no_overflow_after_many_attempts() -> None:
    # 1.5**n overflows a float near n = 1750; the cap must hold far beyond that.
    backoff = start()
    delays = [backoff.next_delay() for _ in range(5000)]
    assert max(delays) == 60.0
    assert delays[-1] == 60.0


# --- jitter ----------------------------------------------------------------------------


def test_full_jitter_with_rng_zero_is_zero() -> None:
    backoff = start(jitter=True, rng=lambda: 0.0)
    assert [backoff.next_delay() for _ in range(20)] == [0.0] * 20
    assert backoff.attempts == 20


def test_full_jitter_with_rng_near_one_approaches_the_computed_delay() -> None:
    almost_one = 1.0 - 2**-53
    backoff = start(jitter=True, rng=lambda: almost_one)
    delays = [backoff.next_delay() for _ in NO_JITTER_SEQUENCE]
    for got, computed in zip(delays, NO_JITTER_SEQUENCE):
        assert got < computed
        assert got == pytest.approx(computed, rel=1e-12)


def test_full_jitter_scales_each_draw() -> None:
    backoff = start(jitter=True, rng=ScriptedRng([0.5, 0.25, 0.1]))
    assert backoff.next_delay() == pytest.approx(0.5)
    assert backoff.next_delay() == pytest.approx(0.375)
    assert backoff.next_delay() == pytest.approx(0.225)


def test_full_jitter_bounds_with_seeded_rng() -> None:
    backoff = start(jitter=True, rng=random.Random(1234).random)
    delays = [backoff.next_delay() for _ in NO_JITTER_SEQUENCE]
    for got, computed in zip(delays, NO_JITTER_SEQUENCE):
        assert 0.0 <= got <= computed
    assert len(set(delays)) == len(delays)  # really random, not a constant factor


def test_out_of_range_rng_cannot_exceed_the_computed_delay() -> None:
    backoff = start(jitter=True, rng=ScriptedRng([7.0, -3.0]))
    assert backoff.next_delay() == 1.0
    assert backoff.next_delay() == 0.0


# --- reset after a long-lived connection -----------------------------------------------


def test_long_lived_connection_resets_backoff() -> None:
    clock = FakeClock()
    backoff = start(clock)
    assert [backoff.next_delay() for _ in range(3)] == pytest.approx([1.0, 1.5, 2.25])
    backoff.connected()
    clock.now += 30.0  # exactly reset_after counts as long-lived
    assert backoff.next_delay() == 1.0
    assert backoff.attempts == 1
    assert backoff.next_delay() == 1.5


def test_short_lived_connection_does_not_reset_backoff() -> None:
    clock = FakeClock()
    backoff = start(clock)
    for _ in range(3):
        backoff.next_delay()
    backoff.connected()
    clock.now += 29.9
    assert backoff.next_delay() == pytest.approx(3.375)
    assert backoff.attempts == 4


def test_connection_is_consumed_by_the_failure_that_ends_it() -> None:
    clock = FakeClock()
    backoff = start(clock)
    backoff.next_delay()
    backoff.connected()
    clock.now += 100.0
    assert backoff.next_delay() == 1.0
    # A later failure to connect, however much later, is not a long-lived connection.
    clock.now += 100.0
    assert backoff.next_delay() == 1.5


def test_reset_after_infinity_never_resets() -> None:
    clock = FakeClock()
    backoff = start(clock, reset_after=math.inf)
    backoff.next_delay()
    backoff.connected()
    clock.now += 1e9
    assert backoff.next_delay() == 1.5


def test_reset_after_zero_resets_on_any_connection() -> None:
    clock = FakeClock()
    backoff = start(clock, reset_after=0.0)
    backoff.next_delay()
    backoff.next_delay()
    backoff.connected()
    assert backoff.next_delay() == 1.0


# --- server retry: ---------------------------------------------------------------------


def test_server_retry_becomes_the_base_delay() -> None:
    backoff = start()
    backoff.server_retry(5000)
    assert backoff.delay_base == 5.0
    assert [backoff.next_delay() for _ in range(3)] == pytest.approx([5.0, 7.5, 11.25])


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (0, 0.5),
        (1, 0.5),
        (499, 0.5),
        (500, 0.5),
        (1500, 1.5),
        (60_000, 60.0),
        (60_001, 60.0),
        (10**30, 60.0),
        (10**400, 60.0),  # far beyond float range: must not raise OverflowError
    ],
)
def test_server_retry_is_clamped(ms: int, expected: float) -> None:
    backoff = start()
    backoff.server_retry(ms)
    assert backoff.delay_base == expected
    assert backoff.next_delay() == expected


def test_server_retry_clamp_uses_policy_bounds() -> None:
    backoff = start(min_server_retry=2.0, max_server_retry=10.0, max_delay=10.0)
    backoff.server_retry(0)
    assert backoff.delay_base == 2.0
    backoff.server_retry(10**30)
    assert backoff.delay_base == 10.0


def test_server_retry_persists_across_reset() -> None:
    clock = FakeClock()
    backoff = start(clock)
    backoff.server_retry(3000)
    backoff.next_delay()
    backoff.next_delay()
    backoff.connected()
    clock.now += 60.0
    assert backoff.next_delay() == 3.0


def test_server_retry_above_max_delay_is_honoured_without_growth() -> None:
    backoff = start(max_delay=10.0, max_server_retry=30.0)
    backoff.server_retry(20_000)
    assert [backoff.next_delay() for _ in range(3)] == [20.0, 20.0, 20.0]


def test_server_retry_rejects_negative() -> None:
    backoff = start()
    with pytest.raises(ValueError, match="retry must be >= 0"):
        backoff.server_retry(-1)
    assert backoff.delay_base == 1.0


# --- Retry-After -----------------------------------------------------------------------


def test_retry_after_is_a_floor_that_jitter_cannot_undercut() -> None:
    backoff = start(jitter=True, rng=lambda: 0.0)
    assert backoff.next_delay(retry_after=120.0) == 120.0
    assert backoff.attempts == 1  # a Retry-After response still counts as a failed attempt


@pytest.mark.parametrize("draw", [0.0, 0.001, 0.3])
def test_server_retry_floor_holds_after_jitter(draw: float) -> None:
    backoff = start(jitter=True, rng=lambda: draw, min_server_retry=0.5)
    assert backoff.next_delay() == pytest.approx(draw)  # no retry: yet, no floor
    backoff.server_retry(0)
    for _ in range(5):
        assert backoff.next_delay() >= 0.5


def test_server_retry_floor_leaves_longer_draws_alone() -> None:
    backoff = start(jitter=True, rng=lambda: 0.5, min_server_retry=0.5, max_delay=60.0)
    backoff.server_retry(4000)
    assert backoff.next_delay() == pytest.approx(2.0)


def test_retry_after_shorter_than_backoff_keeps_backoff() -> None:
    backoff = start()
    for _ in range(5):
        backoff.next_delay()
    assert backoff.next_delay(retry_after=2.0) == pytest.approx(7.59375)


def test_retry_after_above_max_delay_is_honoured_up_to_max_retry_after() -> None:
    backoff = start()
    assert backoff.next_delay(retry_after=120.0) == 120.0
    assert backoff.next_delay(retry_after=10**9) == 300.0
    assert backoff.next_delay(retry_after=math.inf) == 300.0


def test_retry_after_cap_is_configurable() -> None:
    backoff = start(max_retry_after=5.0)
    assert backoff.next_delay(retry_after=120.0) == 5.0


def test_negative_retry_after_means_now() -> None:
    backoff = start()
    assert backoff.next_delay(retry_after=-50.0) == 1.0


def test_nan_retry_after_is_rejected() -> None:
    backoff = start()
    with pytest.raises(ValueError, match="retry_after"):
        backoff.next_delay(retry_after=math.nan)
    assert backoff.attempts == 0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("  7 ", 7.0),
        ("007", 7.0),
        ("9" * 400, float(2**31)),  # RFC 9111's overflow value, never OverflowError
    ],
)
def test_parse_retry_after_delta_seconds(header: str, expected: float) -> None:
    assert parse_retry_after(header, now=0.0) == expected


# 1445412480 is Wed, 21 Oct 2015 07:28:00 GMT.
DATE_TS = 1445412480.0


@pytest.mark.parametrize(
    "header",
    [
        "Wed, 21 Oct 2015 07:28:00 GMT",  # IMF-fixdate
        "Wednesday, 21-Oct-15 07:28:00 GMT",  # obsolete RFC 850
        "Wed Oct 21 07:28:00 2015",  # obsolete asctime, no zone: UTC
    ],
)
def test_parse_retry_after_http_date_in_the_future(header: str) -> None:
    assert parse_retry_after(header, now=DATE_TS - 90.0) == 90.0


def test_parse_retry_after_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=DATE_TS + 3600.0) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=DATE_TS) == 0.0


@pytest.mark.parametrize("zone", ["JST-9", "EST+5"])  # POSIX zones: no tz database needed
def test_parse_retry_after_asctime_is_utc_in_any_local_zone(
    monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        assert time.localtime(DATE_TS).tm_hour != 7  # the zone is in effect
        assert parse_retry_after("Wed Oct 21 07:28:00 2015", now=DATE_TS - 90.0) == 90.0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_parse_retry_after_defaults_to_wall_clock() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    future = parse_retry_after("Fri, 01 Jan 9999 00:00:00 GMT")
    assert future is not None
    assert future > 200 * 365 * 86400


@pytest.mark.parametrize(
    "header",
    ["", "   ", "soon", "-5", "+5", "1.5", "1e3", "12 s", "\u0661\u0662", "Wed, 99 Foo 2015"],
)
def test_parse_retry_after_invalid_is_none(header: str) -> None:
    assert parse_retry_after(header, now=0.0) is None


# --- max_attempts ----------------------------------------------------------------------


def test_max_attempts_raises_retries_exhausted_with_last_cause() -> None:
    backoff = start(max_attempts=3)
    assert [backoff.next_delay(OSError("refused")) for _ in range(3)] == pytest.approx(
        [1.0, 1.5, 2.25]
    )
    cause = ConnectionResetError("boom")
    with pytest.raises(RetriesExhausted) as info:
        backoff.next_delay(cause)
    exc = info.value
    assert exc.attempts == 3
    assert exc.last_cause is cause
    assert exc.__cause__ is cause
    assert str(exc) == "gave up after 3 reconnect attempts; last error: ConnectionResetError: boom"
    assert isinstance(exc, Exception)


def test_a_connection_that_delivered_an_event_resets_the_backoff() -> None:
    """A server that drops every connection after an event or two (rotating connections) is
    reconnected to after the base delay each time, as a browser does, and never exhausts
    max_attempts; the delay grows only over attempts that deliver nothing."""
    backoff = start(max_attempts=2)
    delays = []
    for _ in range(5):
        backoff.connected()
        backoff.progressed()  # this connection delivered an event
        delays.append(backoff.next_delay())
        assert backoff.attempts == 1
    assert delays == pytest.approx([1.0] * 5)
    assert backoff.next_delay() == pytest.approx(1.5)  # a failed attempt: 2 of 2 ...
    with pytest.raises(RetriesExhausted) as info:
        backoff.next_delay()  # ... and no third
    assert info.value.attempts == 2


def test_progress_resets_to_the_servers_retry() -> None:
    backoff = start()
    backoff.server_retry(500)
    assert [backoff.next_delay() for _ in range(3)] == pytest.approx([0.5, 0.75, 1.125])
    backoff.connected()
    backoff.progressed()
    assert backoff.next_delay() == pytest.approx(0.5)


def test_retries_exhausted_stays_exhausted() -> None:
    backoff = start(max_attempts=1)
    backoff.next_delay()
    for _ in range(3):
        with pytest.raises(RetriesExhausted):
            backoff.next_delay()
    assert backoff.attempts == 1


def test_max_attempts_zero_never_reconnects() -> None:
    backoff = start(max_attempts=0)
    with pytest.raises(RetriesExhausted) as info:
        backoff.next_delay(TimeoutError())
    assert info.value.attempts == 0
    assert str(info.value) == "gave up after 0 reconnect attempts; last error: TimeoutError"


def test_retries_exhausted_without_cause() -> None:
    backoff = start(max_attempts=1)
    backoff.next_delay()
    with pytest.raises(RetriesExhausted) as info:
        backoff.next_delay()
    assert str(info.value) == "gave up after 1 reconnect attempt"
    assert info.value.last_cause is None
    assert info.value.__cause__ is None


def test_long_lived_connection_restores_the_attempt_budget() -> None:
    clock = FakeClock()
    backoff = start(clock, max_attempts=2)
    backoff.next_delay()
    backoff.next_delay()
    backoff.connected()
    clock.now += 31.0
    assert backoff.next_delay() == 1.0
    assert backoff.next_delay() == 1.5
    with pytest.raises(RetriesExhausted):
        backoff.next_delay()


def test_short_lived_connections_do_not_restore_the_budget() -> None:
    clock = FakeClock()
    backoff = start(clock, max_attempts=2)
    backoff.next_delay()
    backoff.connected()
    clock.now += 1.0
    backoff.next_delay()
    backoff.connected()
    clock.now += 1.0
    with pytest.raises(RetriesExhausted) as info:
        backoff.next_delay()
    assert info.value.attempts == 2


def test_max_attempts_none_retries_forever() -> None:
    backoff = Retry().start(clock=FakeClock(), rng=random.Random(7).random)
    for _ in range(1000):
        delay = backoff.next_delay(OSError("down"))
        assert 0.0 <= delay <= 60.0
    assert backoff.attempts == 1000


def test_retries_exhausted_pickles() -> None:
    exc = pickle.loads(pickle.dumps(RetriesExhausted(5, ValueError("bad"))))
    assert isinstance(exc, RetriesExhausted)
    assert exc.attempts == 5
    assert isinstance(exc.last_cause, ValueError)
    assert str(exc) == "gave up after 5 reconnect attempts; last error: ValueError: bad"


# --- configuration ---------------------------------------------------------------------


def test_retry_is_immutable_and_hashable() -> None:
    policy = Retry()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.initial = 2.0  # type: ignore[misc]
    assert hash(policy) == hash(Retry())
    assert dataclasses.replace(policy, max_attempts=3).max_attempts == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": 0}, "initial must be > 0"),
        ({"initial": -1.0}, "initial must be > 0"),
        ({"initial": math.nan}, "initial must be a finite number"),
        ({"initial": math.inf}, "initial must be a finite number"),
        ({"multiplier": 0.5}, "multiplier must be >= 1"),
        ({"multiplier": math.nan}, "multiplier must be a finite number"),
        ({"max_delay": 0.5}, r"max_delay \(0.5\) must be >= initial \(1.0\)"),
        ({"max_delay": math.inf}, "max_delay must be a finite number"),
        ({"reset_after": -1.0}, "reset_after must be >= 0"),
        ({"reset_after": math.nan}, "reset_after must be a number"),
        ({"min_server_retry": 0.0}, "min_server_retry must be > 0"),
        ({"min_server_retry": -0.5}, "min_server_retry must be > 0"),
        (
            {"min_server_retry": 10.0, "max_server_retry": 5.0},
            r"max_server_retry \(5.0\) must be >= min_server_retry \(10.0\)",
        ),
        ({"max_attempts": -1}, "max_attempts must be >= 0 or None"),
        ({"max_retry_after": -1.0}, "max_retry_after must be >= 0"),
        ({"max_retry_after": math.inf}, "max_retry_after must be a finite number"),
    ],
)
def test_invalid_configuration_is_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Retry(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": "1"}, "initial must be a number of seconds, got '1'"),
        ({"initial": None}, "initial must be a number of seconds, got None"),
        ({"multiplier": True}, "multiplier must be a number of seconds, got True"),
        ({"max_delay": [60]}, "max_delay must be a number of seconds"),
        ({"reset_after": "30"}, "reset_after must be a number of seconds"),
        ({"min_server_retry": None}, "min_server_retry must be a number of seconds"),
        ({"max_server_retry": "60"}, "max_server_retry must be a number of seconds"),
        ({"max_retry_after": b"1"}, "max_retry_after must be a number of seconds"),
        ({"max_attempts": 1.5}, "max_attempts must be an int or None, got 1.5"),
        ({"max_attempts": True}, "max_attempts must be an int or None, got True"),
        ({"max_attempts": "3"}, "max_attempts must be an int or None"),
        ({"jitter": 1}, "jitter must be True or False, got 1"),
        ({"jitter": None}, "jitter must be True or False, got None"),
    ],
)
def test_configuration_of_the_wrong_type_is_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        Retry(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"multiplier": 1.0},
        {"initial": 60.0, "max_delay": 60.0},
        {"reset_after": 0.0},
        {"reset_after": math.inf},
        {"max_attempts": 0},
        {"min_server_retry": 5.0, "max_server_retry": 5.0},
        {"max_retry_after": 0.0},
    ],
)
def test_edge_configurations_are_accepted(kwargs: dict[str, Any]) -> None:
    policy = Retry(**kwargs)
    for key, value in kwargs.items():
        assert getattr(policy, key) == value


def test_server_retry_is_capped_exactly_when_the_cap_is_not_whole_milliseconds() -> None:
    # The clamp in whole milliseconds rounds 1000.5 ms up; the cap itself must still hold.
    backoff = Retry(min_server_retry=0.5, max_server_retry=1.0005, jitter=False).start()
    backoff.server_retry(10**30)
    assert backoff.next_delay() == 1.0005
