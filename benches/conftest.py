"""Shared pieces of the benchmarks: the corpora (built once per session), contenders timed in
turns, and the summary table printed after pytest-benchmark's own, with events/s, MB/s and ratios
to httpx-sse."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from fastsse._tools import bench
from fastsse._tools.corpus import GENERATORS, Corpus, build

#: Builds (once) a corpus and its 16 KiB chunks.
GetCorpus = Callable[[str], "tuple[Corpus, list[bytes]]"]
#: Keeps a benchmark's best round for the summary.
Record = Callable[[bench.Result], None]

_RESULTS = pytest.StashKey[list[bench.Result]]()


@dataclass(frozen=True)
class Target:
    """A speed the project aims for on one benchmark group, as a ratio to a baseline measured
    in the same run. Printed for developers after the table; never by ``fastsse bench``."""

    corpus: str
    #: ``parser``'s speed over ``baseline``'s.
    min_ratio: float
    min_mb_per_s: float = 0.0
    parser: str = "fastsse"
    baseline: str = "httpx-sse"

    def describe(self) -> str:
        goal = f">= {self.min_ratio:g}x {self.baseline}"
        if self.min_mb_per_s:
            goal += f" and >= {self.min_mb_per_s:,.0f} MB/s"
        return goal


TARGETS = (
    Target("small", 10),
    Target("llm", 10),
    Target("64k", 1, 1500),
    Target("llm + JSON", 3),
    # End to end over loopback HTTP (test_bench_e2e.py): the stream on fastsse.async_client()
    # against httpx-sse on a default httpx.AsyncClient, and the stream on a plain httpx client,
    # event by event, against the bare Parser loop over the same client (over aiter_bytes(),
    # as anyone writes it; the table also has the loop over aiter_raw(), which reads the body
    # as the stream does).
    *(
        target
        for loop in ("", " (uvloop)")
        for chunking in ("16 KiB chunks", "chunk per event")
        for target in (
            Target(f"e2e llm, {chunking}{loop}", 3, parser="fastsse, aiohttp"),
            Target(
                f"e2e llm, {chunking}{loop}",
                0.92,
                parser="fastsse, httpx",
                baseline="Parser loop, httpx",
            ),
        )
    ),
)


def check_targets(results: list[bench.Result]) -> list[str]:
    """One line per target whose group was measured with both its parser and its baseline."""
    found = {(result.corpus, result.parser): result for result in results}
    lines = []
    for target in TARGETS:
        fast = found.get((target.corpus, target.parser))
        base = found.get((target.corpus, target.baseline))
        if fast is None or base is None:
            continue
        ratio, how = _ratio(fast, base)
        met = ratio >= target.min_ratio and fast.mb_per_s >= target.min_mb_per_s
        what = target.corpus if target.parser == "fastsse" else f"{target.corpus}: {target.parser}"
        lines.append(
            f"  {'met   ' if met else 'MISSED'}  {what:<10} {ratio:5.2f}x {target.baseline}, "
            f"{fast.mb_per_s:,.0f} MB/s  (target {target.describe()}; {how})"
        )
    return lines


def _ratio(fast: bench.Result, base: bench.Result) -> tuple[float, str]:
    """How much faster ``fast`` is than ``base``, and how that was measured: the median of the
    ratios of rounds run side by side when they took turns (load on a shared machine changes
    from second to second and weighs on both sides of a pair alike), else best round over best
    round."""
    if fast.rounds and len(fast.rounds) == len(base.rounds):
        ratios = [b / f for f, b in zip(fast.rounds, base.rounds)]
        return statistics.median(ratios), f"median of {len(ratios)} paired rounds"
    return base.seconds / fast.seconds, "best round over best round"


@pytest.fixture(scope="session")
def corpora() -> GetCorpus:
    built: dict[str, tuple[Corpus, list[bytes]]] = {}

    def get(name: str) -> tuple[Corpus, list[bytes]]:
        if name not in built:
            corpus = build(name)
            built[name] = (corpus, corpus.chunks())
        return built[name]

    return get


@pytest.fixture(scope="session")
def record(pytestconfig: pytest.Config) -> Record:
    return pytestconfig.stash.setdefault(_RESULTS, []).append


class Handler:
    """The per-event work of a consumer: an awaited handler that reads every field."""

    def __init__(self) -> None:
        self.count = 0
        self.size = 0

    async def __call__(self, event: Any) -> None:
        self.count += 1
        self.size += len(event.data) + len(event.event) + len(event.id)


#: Consumes the whole stream, awaiting the handler with each event.
Consume = Callable[[Handler], Awaitable[None]]
#: ``take_turns(group, corpus, contenders, uncounted=())``.
TakeTurns = Callable[..., None]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for a module's rounds (test_bench_e2e.py has its own, one per kind)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


#: Rounds per contender taking turns (after one warm-up round).
ROUNDS = 25


@pytest.fixture
def take_turns(benchmark: Any, loop: asyncio.AbstractEventLoop, record: Record) -> TakeTurns:
    """Times contenders that each consume ``corpus`` on ``loop``, taking turns round after round,
    so that a load change on a shared machine weighs on all of them alike. Every round must hand
    every event to the handler (but for the ``uncounted`` contenders, which read bytes only);
    each contender's best round goes to the summary under ``group``. (The benchmark's own row
    times one round of all of them; with one contender, its rounds.)"""
    # The timer pytest-benchmark was given (--benchmark-timer), for each contender's turn too.
    timer = getattr(benchmark, "_timer", time.perf_counter)

    def take(
        group: str,
        corpus: Corpus,
        contenders: Mapping[str, Consume],
        uncounted: Collection[str] = (),
    ) -> None:
        rounds: dict[str, list[float]] = {name: [] for name in contenders}
        order = list(contenders)

        def one_round_each() -> None:
            # Every other round in reverse order, so that no contender always runs after the
            # same one; and each on a collected heap, so that none pays for another's garbage.
            order.reverse()
            for name in order:
                consume = contenders[name]
                handle = Handler()
                gc.collect()
                started = timer()
                loop.run_until_complete(consume(handle))
                rounds[name].append(timer() - started)
                if name not in uncounted:
                    bench.check_count(name, corpus, handle.count)

        benchmark.group = group
        benchmark.pedantic(one_round_each, rounds=ROUNDS, warmup_rounds=1)
        if benchmark.stats is not None:  # None under --benchmark-disable
            for name, times in rounds.items():
                times = times[1:]  # The warm-up round's.
                record(
                    bench.Result(
                        group, name, min(times), corpus.events, len(corpus.data), tuple(times)
                    )
                )

    return take


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    results = terminalreporter.config.stash.get(_RESULTS, [])
    if not results:
        return
    # As in `fastsse bench`: corpus by corpus, the contenders side by side.
    corpus_order = list(GENERATORS)
    for result in results:  # Then the end-to-end groups, in the order they ran.
        if result.corpus not in corpus_order:
            corpus_order.append(result.corpus)
    parser_order = bench.PARSER_ORDER
    results = sorted(
        results,
        key=lambda r: (
            corpus_order.index(r.corpus),
            parser_order.index(r.parser) if r.parser in parser_order else len(parser_order),
        ),
    )
    terminalreporter.write_sep("-", "throughput, best round (MB = 10^6 bytes)")
    terminalreporter.write_line(bench.format_table(results))
    targets = check_targets(results)
    if targets:
        terminalreporter.write_line("\nTargets:")
        for line in targets:
            terminalreporter.write_line(line)
    relative = _versus_bare_loop(results)
    if relative:
        terminalreporter.write_line("\nSpeed relative to the bare Parser loop, same run:")
        for line in relative:
            terminalreporter.write_line(line)
    if bench.parse_httpx_sse is None:
        terminalreporter.write_line(bench.HTTPX_SSE_MISSING)


#: The contender others are compared with in a corpus that has it (benches/test_bench_compat.py).
BARE_LOOP = "bare Parser loop"


def _versus_bare_loop(results: list[bench.Result]) -> list[str]:
    bare = {r.corpus: r.seconds for r in results if r.parser == BARE_LOOP}
    return [
        f"  {r.corpus:<30} {r.parser:<20} {bare[r.corpus] / r.seconds:6.1%}"
        for r in results
        if r.corpus in bare and r.parser != BARE_LOOP
    ]
