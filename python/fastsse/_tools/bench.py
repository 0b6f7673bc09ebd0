"""The parse benchmark shared by ``benches/`` and ``fastsse bench``: three contenders, one
function each ("parse all chunks, return the event count"), and a best-of-N runner.

Every contender does what its library does per chunk read from the socket and collects the
events of that chunk in a list, as a consumer would; the lists are dropped as it goes, so
memory and GC work stay flat over the run.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional, TextIO

from fastsse._fastsse import Parser
from fastsse._pure import PureParser
from fastsse._tools.corpus import CHUNK_SIZE, GENERATORS, Corpus, build

#: Parses every chunk of one stream and returns how many events it produced.
Contender = Callable[[Sequence[bytes]], int]


def _feeding(make_parser: Callable[[], Parser | PureParser], doc: str) -> Contender:
    def parse(chunks: Sequence[bytes]) -> int:
        parser = make_parser()
        feed = parser.feed
        count = 0
        for chunk in chunks:
            count += len(feed(chunk))
        return count + len(parser.finish())

    parse.__doc__ = doc
    return parse


parse_fastsse = _feeding(Parser, "fastsse's Rust parser: one ``feed`` per chunk.")
parse_pure = _feeding(PureParser, "fastsse's pure-Python reference parser, same API.")


#: httpx-sse's decoding of chunks, calling an optional handler with each event.
HttpxSSEDecode = Callable[[Sequence[bytes], Optional[Callable[[Any], object]]], int]


def _load_httpx_sse() -> HttpxSSEDecode | None:
    try:
        from httpx_sse._decoders import SSEDecoder, SSELineDecoder
    except ImportError:
        return None

    def parse_httpx_sse(
        chunks: Sequence[bytes], handle: Callable[[Any], object] | None = None
    ) -> int:
        """httpx-sse 0.4's ``EventSource.iter_sse`` per chunk: httpx's ``iter_text`` (an
        incremental UTF-8 decoder with ``errors="replace"``, empty text skipped), then its
        line decoder, then its event decoder line by line. Generator overhead and iter_sse's
        no-op ``line.rstrip("\\n")`` are left out, which favours httpx-sse slightly.
        ``handle``, when given, is called with each event (for the JSON benchmark)."""
        text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        line_decoder = SSELineDecoder()
        event_decoder = SSEDecoder()
        decode_text = text_decoder.decode
        decode_lines = line_decoder.decode
        decode_line = event_decoder.decode
        count = 0
        for chunk in chunks:
            text = decode_text(chunk)
            if not text:
                continue
            events: list[Any] = []
            for line in decode_lines(text):
                event = decode_line(line)
                if event is not None:
                    events.append(event)
            if handle is not None:
                for event in events:
                    handle(event)
            count += len(events)
        tail = decode_text(b"", True)
        lines = (decode_lines(tail) if tail else []) + line_decoder.flush()
        return count + sum(decode_line(line) is not None for line in lines)

    return parse_httpx_sse


#: httpx-sse's decoder, or None when httpx-sse is not installed.
decode_httpx_sse = _load_httpx_sse()


def _parse_only(decode: HttpxSSEDecode) -> Contender:
    def parse_httpx_sse(chunks: Sequence[bytes]) -> int:
        return decode(chunks, None)

    return parse_httpx_sse


parse_httpx_sse: Contender | None = (
    None if decode_httpx_sse is None else _parse_only(decode_httpx_sse)
)

HTTPX_SSE_MISSING = (
    "httpx-sse is not installed: its column is left out (pip install httpx-sse to compare)"
)


def contenders() -> dict[str, Contender]:
    """The parsers to compare, by display name; httpx-sse only when it is installed."""
    found: dict[str, Contender] = {"fastsse": parse_fastsse}
    if parse_httpx_sse is not None:
        found["httpx-sse"] = parse_httpx_sse
    found["pure"] = parse_pure
    return found


@dataclass(frozen=True)
class Result:
    """The best time of one parser on one corpus."""

    corpus: str
    parser: str
    seconds: float
    events: int
    nbytes: int
    #: Every round's time, when the contenders of the corpus took turns round after round: the
    #: k-th rounds of two contenders ran close together, under the same load.
    rounds: tuple[float, ...] = ()

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def mb_per_s(self) -> float:
        """Throughput in MB/s (10^6 bytes per second)."""
        return self.nbytes / self.seconds / 1e6


def _time(func: Contender, chunks: Sequence[bytes], number: int) -> float:
    """Seconds per call, over ``number`` calls."""
    start = time.perf_counter()
    for _ in range(number):
        func(chunks)
    return (time.perf_counter() - start) / number


def _calls_per_run(func: Contender, chunks: Sequence[bytes], min_time: float) -> int:
    """Like ``timeit``'s autorange: how many calls make a timed run last ``min_time``."""
    number = 1
    while number < 1_000:
        elapsed = _time(func, chunks, number) * number
        if elapsed >= min_time:
            break
        number *= 2 if elapsed == 0 else max(2, min(10, int(min_time / elapsed) + 1))
    return number


def best_times(
    parsers: dict[str, Contender], chunks: Sequence[bytes], *, repeat: int, min_time: float
) -> dict[str, float]:
    """The best seconds per call of each parser over ``repeat`` runs, each lasting at least
    ``min_time``. The parsers take turns, run after run, so that a load change on a shared
    machine weighs on all of them alike. The garbage collector stays on, as in a real consumer
    (and in pytest-benchmark's default)."""
    numbers = {name: _calls_per_run(func, chunks, min_time) for name, func in parsers.items()}
    best = {name: float("inf") for name in parsers}
    for _ in range(repeat):
        for name, func in parsers.items():
            best[name] = min(best[name], _time(func, chunks, numbers[name]))
    return best


def check_count(parser: str, corpus: Corpus, count: int) -> None:
    """Guards the comparison: every parser must find every event of the corpus."""
    if count != corpus.events:
        raise AssertionError(
            f"{parser} found {count} events in the {corpus.name} corpus, not {corpus.events}"
        )


def run(
    corpora: Iterable[Corpus],
    *,
    chunk_size: int = CHUNK_SIZE,
    repeat: int = 5,
    min_time: float = 0.2,
    parsers: dict[str, Contender] | None = None,
) -> list[Result]:
    """Times every parser on every corpus."""
    parsers = contenders() if parsers is None else parsers
    results: list[Result] = []
    for corpus in corpora:
        chunks = corpus.chunks(chunk_size)
        for name, func in parsers.items():
            check_count(name, corpus, func(chunks))
        seconds = best_times(parsers, chunks, repeat=repeat, min_time=min_time)
        results.extend(
            Result(corpus.name, name, seconds[name], corpus.events, len(corpus.data))
            for name in parsers
        )
    return results


def _si(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.2f} {suffix}"
    return f"{value:.0f}  "


def _ratio(value: float) -> str:
    return f"{value:.1f}x" if value >= 1 else f"{value:.2f}x"


def format_table(results: Sequence[Result]) -> str:
    """An aligned table: events/s, MB/s, and each parser's speed relative to httpx-sse and to
    the pure-Python parser on the same corpus (higher is faster)."""
    seconds = {(result.corpus, result.parser): result.seconds for result in results}
    header = ("corpus", "parser", "events/s", "MB/s", "vs httpx-sse", "vs pure")
    rows = []
    for result in results:
        ratios = []
        for baseline in ("httpx-sse", "pure"):
            base = seconds.get((result.corpus, baseline))
            ratios.append("-" if base is None else _ratio(base / result.seconds))
        rows.append(
            (
                result.corpus,
                result.parser,
                _si(result.events_per_s),
                f"{result.mb_per_s:,.0f}",
                *ratios,
            )
        )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        # Text columns to the left, numbers to the right.
        return "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths))
        ).rstrip()

    out = [line(header), line(["-" * width for width in widths])]
    previous = None
    for result, row in zip(results, rows):
        if previous is not None and result.corpus != previous:
            out.append("")
        previous = result.corpus
        out.append(line(row))
    return "\n".join(out)


#: How the contenders of one corpus are listed in tables.
PARSER_ORDER = [
    "fastsse",
    "fastsse batches",
    "httpx-sse",
    "pure",
    "httpx bytes, no parsing",
    *(
        f"{reader}, {transport}"
        for transport in ("httpx", "aiohttp")
        for reader in ("fastsse", "fastsse batches", "Parser loop", "bytes, no parsing")
    ),
    "Parser loop (aiter_raw), httpx",
]


def describe(corpora: Iterable[Corpus]) -> str:
    """One line per corpus: its name, what it is (as the README says) and how big."""
    corpora = list(corpora)
    width = max((len(c.description) for c in corpora), default=0)
    return "\n".join(
        f"  {c.name:<10} {c.description:<{width}}  {len(c.data) / 1e6:5.1f} MB"
        f"  {c.events:>9,} events"
        for c in corpora
    )


def run_bench(
    *,
    names: Sequence[str] = tuple(GENERATORS),
    scale: float = 1.0,
    chunk_size: int = CHUNK_SIZE,
    repeat: int = 5,
    min_time: float = 0.2,
    out: TextIO | None = None,
) -> list[Result]:
    """``fastsse bench``: builds the corpora, times the parsers and prints the table."""
    write: Callable[[str], Any] = print if out is None else lambda text: print(text, file=out)
    corpora = [build(name, scale) for name in names]
    write(f"Parsing in {chunk_size:,}-byte chunks, best of {repeat} (MB = 10^6 bytes):")
    write(describe(corpora))
    if parse_httpx_sse is None:
        write(HTTPX_SSE_MISSING)
    write("")
    results = run(corpora, chunk_size=chunk_size, repeat=repeat, min_time=min_time)
    write(format_table(results))
    return results
