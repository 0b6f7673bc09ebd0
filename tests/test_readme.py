"""The README's commands and examples stay true."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from fastsse._corpus import DESCRIPTIONS, GENERATORS

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_first_lines_give_the_demo_and_the_test_command() -> None:
    lines = [line.strip() for line in README.read_text(encoding="utf-8").splitlines()[:5]]
    commands = [line.split("#")[0].strip() for line in lines if line.startswith("make")]
    assert commands == ["make demo", "make test"]
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "\ndemo:" in makefile
    assert "\ntest:" in makefile
    assert ci.rstrip().endswith("make test")


def test_parse_example_prints_what_its_comments_say() -> None:
    example = python_blocks()[0]
    expected = [comment.strip() for comment in re.findall(r"print\(.*\)\s*#\s*(.*)", example)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, str(README), "exec"), {})
    assert out.getvalue().splitlines() == expected


def test_benchmark_table_describes_each_corpus_as_fastsse_bench_does() -> None:
    text = README.read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| parse")}
    assert set(DESCRIPTIONS) == set(GENERATORS)
    for name, description in DESCRIPTIONS.items():
        assert f"parse {description}" in rows, name
