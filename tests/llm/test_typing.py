"""The keywords of fastsse.llm are typed: mypy knows httpx's request keywords and rejects a
misspelt one (``jsno=``), on every method, sync and async."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = """
from __future__ import annotations

import httpx
from fastsse import llm


def sync(client: httpx.Client) -> None:
    url = "http://127.0.0.1/v1/chat/completions"
    headers = {"Authorization": "Bearer k"}
    llm.openai_chat.complete(client, url, json={"stream": True}, headers=headers, timeout=5.0)
    llm.anthropic.events(client, url, params={"a": "1"}, max_retries=0, follow_redirects=True)
    llm.gemini.text(client, url, content=b"{}", timeout=httpx.Timeout(3.0), auth=("u", "p"))
    with llm.openai_responses.stream(client, url, json={}, backoff=lambda n: 0.0) as s:
        result: llm.Result = s.finish()
        print(s.response.headers, result.usage)
    llm.openai_chat.complete(client, url, jsno={"stream": True})  # BAD 1
    llm.anthropic.stream(client, url, header={"a": "b"})  # BAD 2
    llm.gemini.text(client, url, max_retries="2")  # BAD 3


async def asynchronous(client: httpx.AsyncClient) -> None:
    url = "http://127.0.0.1/v1/messages"
    await llm.anthropic.acomplete(client, url, json={}, on_token=print)
    async with llm.openai_chat.astream(client, url, json={}) as s:
        async for token in s.text():
            print(token)
    async for event in llm.gemini.aevents(client, url, jsno={}):  # BAD 4
        print(event)
"""


def test_mypy_rejects_a_misspelt_keyword(tmp_path: Path) -> None:
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET)
    # From the repository's root, so that mypy reuses its cache of httpx and fastsse.
    found = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(source)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    lines = SNIPPET.splitlines()
    bad = {n + 1 for n, line in enumerate(lines) if "# BAD" in line}
    errors = {}
    for line in found.stdout.splitlines():
        match = re.match(r".*snippet\.py:(\d+): error: (.*)", line)
        if match:
            errors.setdefault(int(match[1]), []).append(match[2])
    assert set(errors) == bad, found.stdout + found.stderr
    assert any('Unexpected keyword argument "jsno"' in e for e in errors[min(bad)])
    assert any('Unexpected keyword argument "header"' in e for e in errors[sorted(bad)[1]])
    assert any('"max_retries"' in e and "int" in e for e in errors[sorted(bad)[2]])
