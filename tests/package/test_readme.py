"""The README's commands and examples stay true."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastsse._tools.corpus import DESCRIPTIONS, GENERATORS
from fastsse.testing import Response, SSEServer, event

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


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


def readme_block(marker: str) -> str:
    (block,) = [block for block in python_blocks() if marker in block]
    return block


def first_screen() -> str:
    """The README up to its first section heading: what a newcomer sees first."""
    text = README.read_text(encoding="utf-8")
    return text[: text.index("\n## ")]


def test_the_first_screen_gives_install_a_stream_example_llm_and_migration_in_order() -> None:
    screen = first_screen()
    marks = [
        "make demo",
        "make test",
        'pip install ".[aiohttp]"',
        "fastsse.AsyncEventStream(",
        "llm.openai_chat",
        "from fastsse import connect_sse",
        "fastsse.sse(client, url)",
    ]
    positions = [screen.find(mark) for mark in marks]
    assert -1 not in positions, [m for m, p in zip(marks, positions) if p == -1]
    assert positions == sorted(positions)
    assert len(screen.splitlines()) <= 60
    # Figures belong to Benchmarks, not to the first screen.
    assert not re.search(r"KiB|instructions|\d+x ", screen)


def test_the_first_example_is_a_script_that_prints_events(tmp_path: Path) -> None:
    example = python_blocks()[0]
    real_url = "https://example.com/feed"
    assert real_url in example
    assert "asyncio.run(main())" in example
    compile(example, "example.py", "exec")  # pasted into a file: no top-level await
    script = tmp_path / "example.py"
    body = [event("hello", id="1"), event("world", event="greet", id="2")]
    # The second answer is 204: by the spec, the end of a stream that reconnects.
    with SSEServer(Response(body=body), Response(status=204, content_type=None)) as server:
        script.write_text(example.replace(real_url, server.url), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
        requests = server.requests
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1 message hello\n2 greet world\n"
    assert [request.last_event_id for request in requests] == [None, "2"]


def test_no_install_hint_names_the_pypi_project_that_is_not_this_one() -> None:
    # `fastsse` on PyPI is an unrelated project: `pip install "fastsse[redis]"` installs it.
    hint = re.compile(r"""pip install\s+["']?fastsse\[""")
    files = [README, *sorted((ROOT / "python").rglob("*.py"))]
    offenders = [str(path) for path in files if hint.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
    install = README.read_text(encoding="utf-8").split("## Install\n", 1)[1].split("\n## ")[0]
    assert "belongs to an unrelated project" in install
    assert 'pip install ".[aiohttp]"' in install
    # The name tests/package/test_wheel.py expects of `make wheel`'s wheel, on x86_64.
    wheel = "fastsse-0.1.0-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
    assert f'pip install "./dist/{wheel}[redis]"' in install
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '\nname = "fastsse"\n' in pyproject  # the wheel's distribution name stays


def test_parse_example_prints_what_its_comments_say() -> None:
    example = readme_block("parser = fastsse.Parser()")
    expected = [comment.strip() for comment in re.findall(r"print\(.*\)\s*#\s*(.*)", example)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, str(README), "exec"), {})
    assert out.getvalue().splitlines() == expected


def run_readme_block(block: str, real_url: str, url: str) -> str:
    """Runs a README example with its real URL pointed at a loopback server; its output."""
    assert real_url in block
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.replace(real_url, url), str(README), "exec"), {"__name__": "readme"})
    return out.getvalue()


def test_migration_example_runs_on_fastsse() -> None:
    block = readme_block("from fastsse import connect_sse")
    server_body = [event("1"), event("2", event="tick", id="7")]
    with SSEServer(Response(body=server_body)) as server:
        out = run_readme_block(block, "http://localhost:8000/sse", server.url)
    assert out == "message 1  None\ntick 2 7 None\n"


def test_httpx2_migration_example_runs_on_fastsse() -> None:
    pytest.importorskip("httpx2")  # Python >= 3.11
    block = readme_block("fastsse.sse(client,")
    server_body = [event("1"), b"id: 7\nretry: 50\n\n", event("2", event="tick")]
    with SSEServer(Response(body=server_body)) as server:
        out = run_readme_block(block, "http://localhost:8000/sse", server.url)
    assert out == "message 1  None\nmessage  7 50\ntick 2 7 None\n"


def test_openai_example_streams_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-readme")
    body = (FIXTURES / "openai_chat.sse").read_bytes()
    with SSEServer(Response(body=[body])) as server:
        out = run_readme_block(
            readme_block("on_token=lambda"),
            "https://api.openai.com/v1/chat/completions",
            server.url,
        )
        (request,) = server.requests
    assert out == "Hello! How can I help you today?"
    assert request.header("authorization") == "Bearer sk-readme"
    assert request.json()["stream"] is True


def test_llm_stream_object_example_shows_the_response_tokens_and_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-readme")
    body = (FIXTURES / "openai_chat.sse").read_bytes()
    headers = {"x-request-id": "req-123"}
    with SSEServer(Response(body=[body], headers=headers)) as server:
        out = run_readme_block(
            readme_block("s.result.finish_reason"),
            "https://api.openai.com/v1/chat/completions",
            server.url,
        )
    lines = out.splitlines()
    assert lines[0] == "request id: req-123"
    assert lines[1] == "Hello! How can I help you today?"
    assert lines[2].startswith("stop ")


def test_anthropic_example_streams_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-readme")
    body = (FIXTURES / "anthropic_messages.sse").read_bytes()
    with SSEServer(Response(body=[body])) as server:
        out = run_readme_block(
            readme_block("api.anthropic.com"), "https://api.anthropic.com/v1/messages", server.url
        )
        (request,) = server.requests
    assert out == "Hello! I'm Claude. How can I help?"
    assert request.header("x-api-key") == "sk-ant-readme"
    assert request.header("anthropic-version") == "2023-06-01"


def test_benchmark_table_describes_each_corpus_as_fastsse_bench_does() -> None:
    text = README.read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| parse")}
    assert set(DESCRIPTIONS) == set(GENERATORS)
    for name, description in DESCRIPTIONS.items():
        assert f"parse {description}" in rows, name


def test_the_protocol_driver_is_the_one_its_module_documents_and_tests() -> None:
    # tests/protocol/test_protocol_e2e.py runs the docstring's driver against a real server.
    import fastsse.protocol

    block = readme_block("from fastsse.protocol import")
    doc = fastsse.protocol.__doc__ or ""
    documented = doc[doc.index("    import asyncio\n") : doc.index("The steps, and what")]
    assert textwrap.dedent(documented).strip() == block.strip()
