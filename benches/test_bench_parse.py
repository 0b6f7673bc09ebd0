"""Parse throughput: fastsse's Rust parser, httpx-sse's decoder and fastsse's pure-Python parser
on the same corpora in 16 KiB chunks, one benchmark group per corpus.

Run: ``python -m pytest benches/ --benchmark-only`` (a plain ``pytest`` collects tests/ only).
The summary after pytest-benchmark's tables gives events/s, MB/s and the ratios to httpx-sse.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from fastsse._tools import bench
from fastsse._tools.corpus import GENERATORS, Corpus, chunked

PARSERS = {
    "fastsse": bench.parse_fastsse,
    "httpx-sse": bench.parse_httpx_sse,
    "pure": bench.parse_pure,
}


@pytest.mark.parametrize("parser", list(PARSERS))
@pytest.mark.parametrize("corpus_name", list(GENERATORS))
def test_parse(
    benchmark: Any,
    corpora: Callable[[str], tuple[Corpus, list[bytes]]],
    record: Callable[[bench.Result], None],
    corpus_name: str,
    parser: str,
) -> None:
    parse = PARSERS[parser]
    if parse is None:
        pytest.skip(bench.HTTPX_SSE_MISSING)
    corpus, chunks = corpora(corpus_name)
    benchmark.group = f"parse {corpus_name}: {corpus.description}"
    benchmark.extra_info.update(events=corpus.events, bytes=len(corpus.data))

    count = benchmark(parse, chunks)

    bench.check_count(parser, corpus, count)
    if benchmark.stats is not None:  # None under --benchmark-disable
        best = benchmark.stats.stats.min
        record(bench.Result(corpus.name, parser, best, corpus.events, len(corpus.data)))


def _invalid_utf8(corpus: Corpus) -> bytes:
    """The LLM corpus with one invalid UTF-8 byte in every event's data."""
    data = corpus.data.replace(b'"object"', b'"obj\xffct"')
    assert data.count(b"\xff") == corpus.events - 1  # all but the closing [DONE]
    return data


#: Edge paths of the same LLM corpus, each its own row in the summary: compare fastsse's
#: events/s with the plain "llm" row (today about 1.5-1.7x its cost; 5-7x before invalid data
#: were decoded in one pass) and each ratio to httpx-sse, which decodes them with "replace" too.
EDGE_CASES: dict[str, Callable[[Corpus], list[Any]]] = {
    "llm invalid UTF-8": lambda corpus: chunked(_invalid_utf8(corpus)),
    "llm memoryview": lambda corpus: [memoryview(chunk) for chunk in corpus.chunks()],
}


@pytest.mark.parametrize("parser", list(PARSERS))
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_parse_edge_case(
    benchmark: Any,
    corpora: Callable[[str], tuple[Corpus, list[bytes]]],
    record: Callable[[bench.Result], None],
    case: str,
    parser: str,
) -> None:
    parse = PARSERS[parser]
    if parse is None:
        pytest.skip(bench.HTTPX_SSE_MISSING)
    corpus, _ = corpora("llm")
    chunks = EDGE_CASES[case](corpus)
    benchmark.group = f"parse {case}"
    benchmark.extra_info.update(events=corpus.events, bytes=len(corpus.data))

    count = benchmark(parse, chunks)

    bench.check_count(parser, corpus, count)
    if benchmark.stats is not None:  # None under --benchmark-disable
        best = benchmark.stats.stats.min
        record(bench.Result(case, parser, best, corpus.events, len(corpus.data)))
