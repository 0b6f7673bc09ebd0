"""Parse throughput: fastsse's Rust parser, httpx-sse's decoder and fastsse's pure-Python parser
on the same corpora in 16 KiB chunks, one benchmark group per corpus.

Run: ``python -m pytest benches/ --benchmark-only`` (a plain ``pytest`` collects tests/ only).
The summary after pytest-benchmark's tables gives events/s, MB/s and the ratios to httpx-sse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import pytest
from fastsse._tools import bench
from fastsse._tools.corpus import GENERATORS, Corpus, chunked

PARSERS = {
    "fastsse": bench.parse_fastsse,
    "httpx-sse": bench.parse_httpx_sse,
    "pure": bench.parse_pure,
}


def _invalid_utf8(corpus: Corpus) -> bytes:
    """The LLM corpus with one invalid UTF-8 byte in every event's data."""
    data = corpus.data.replace(b'"object"', b'"obj\xffct"')
    assert data.count(b"\xff") == corpus.events - 1  # all but the closing [DONE]
    return data


#: Each row of the summary: the corpus whose events it counts, and what is parsed, from that
#: corpus and its 16 KiB chunks. Every corpus as it is, then edge paths of the LLM corpus, each
#: its own row: compare fastsse's events/s with the plain "llm" row (today about 1.5-1.7x its
#: cost; 5-7x before invalid data were decoded in one pass) and each ratio to httpx-sse, which
#: decodes them with "replace" too.
CASES: dict[str, tuple[str, Callable[[Corpus, list[bytes]], Sequence[Any]]]] = {
    **{name: (name, lambda _, chunks: chunks) for name in GENERATORS},
    "llm invalid UTF-8": ("llm", lambda corpus, _: chunked(_invalid_utf8(corpus))),
    "llm memoryview": ("llm", lambda _, chunks: [memoryview(chunk) for chunk in chunks]),
}


@pytest.mark.parametrize("parser", list(PARSERS))
@pytest.mark.parametrize("case", list(CASES))
def test_parse(
    benchmark: Any,
    corpora: Callable[[str], tuple[Corpus, list[bytes]]],
    record: Callable[[bench.Result], None],
    case: str,
    parser: str,
) -> None:
    parse = PARSERS[parser]
    if parse is None:
        pytest.skip(bench.HTTPX_SSE_MISSING)
    corpus_name, prepare = CASES[case]
    corpus, chunks = corpora(corpus_name)
    parsed = prepare(corpus, chunks)
    # A corpus's own group says what it holds, in the words of `fastsse bench`.
    described = f"{case}: {corpus.description}" if case == corpus_name else case
    benchmark.group = f"parse {described}"
    benchmark.extra_info.update(events=corpus.events, bytes=len(corpus.data))

    count = benchmark(parse, parsed)

    bench.check_count(parser, corpus, count)
    if benchmark.stats is not None:  # None under --benchmark-disable
        best = benchmark.stats.stats.min
        record(bench.Result(case, parser, best, corpus.events, len(corpus.data)))
