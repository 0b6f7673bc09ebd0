"""The ``fastsse`` command line: the live demo, the parse benchmark table, the module entry."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from fastsse._tools import bench
from fastsse._tools.corpus import DESCRIPTIONS
from fastsse._tools.demo import run_demo
from fastsse.cli import main


def test_demo_resumes_a_cut_stream_without_loss_and_compares_throughput() -> None:
    out = io.StringIO()
    assert run_demo(out, quick=True) == 0
    text = out.getvalue()
    assert "events received     20,000 of 20,000" in text
    assert "reconnects          2" in text
    assert "resumed with        Last-Event-ID 7000, 13000" in text
    assert "lost / duplicated   0 / 0" in text
    table = text[text.index("Throughput") :].splitlines()[2:]
    assert [line.split()[0] for line in table] == ["fastsse", "pure", "httpx-sse"]
    # Every client counted every event of the same stream.
    assert len({line.split()[-4] for line in table}) == 1


def test_bench_prints_the_comparison_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--corpus", "small", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("small")]
    assert [row[1] for row in rows] == ["fastsse", "httpx-sse", "pure"]
    # Each row ends with the ratios to httpx-sse (1.0x on its own row) and to pure.
    assert rows[1][-2] == "1.0x"
    assert rows[2][-1] == "1.0x"
    assert all(row[-2].endswith("x") and row[-1].endswith("x") for row in rows)
    # The corpus is described in the README's words, and nothing but measurements follows.
    assert f"  small      {DESCRIPTIONS['small']}  " in out
    assert "target" not in out.lower()
    assert "MISSED" not in out
    assert out.rstrip().splitlines()[-1].split() == rows[-1]  # the table is the last thing


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"scale": 1.0, "repeat": 5, "min_time": 0.2}),
        (["--quick"], {"scale": 0.25, "repeat": 3, "min_time": 0.05}),
        # What is given wins over --quick's sizes.
        (
            ["--quick", "--repeat", "1", "--scale", "0.5"],
            {"scale": 0.5, "repeat": 1, "min_time": 0.05},
        ),
        (["--min-time", "1"], {"scale": 1.0, "repeat": 5, "min_time": 1.0}),
    ],
)
def test_bench_sizes_given_win_over_the_defaults(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: dict[str, float]
) -> None:
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(bench, "run_bench", lambda **kwargs: calls.append(kwargs))
    assert main(["bench", *argv]) == 0
    (call,) = calls
    assert {name: call[name] for name in expected} == expected


def test_the_cli_loads_the_demo_and_bench_tooling_only_for_their_commands() -> None:
    code = (
        "import sys, fastsse.cli; "
        "print(sorted(m for m in sys.modules if m.startswith('fastsse._tools')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_cli_loads_the_relay_and_the_worker_only_for_the_relay_command() -> None:
    code = (
        "import sys, fastsse.cli, fastsse.redis; "
        "print(sorted(m for m in sys.modules if m in ('fastsse.redis.relay', "
        "'fastsse.redis.worker'))); "
        "from fastsse.redis import Relay, RedisStreamConsumer; "
        "print(Relay.__module__, RedisStreamConsumer.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "fastsse.redis.relay fastsse.redis.worker"]


def test_an_unknown_corpus_is_refused_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--corpus", "nope"]) == 2
    error = capsys.readouterr().err
    assert "no corpus named 'nope' (choose from small, llm, 64k, multiline)" in error


def test_bad_arguments_are_refused_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--repeat", "0"])
    assert exit_info.value.code == 2
    assert "must be a positive integer" in capsys.readouterr().err


def test_python_dash_m_fastsse_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fastsse", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "demo" in done.stdout
    assert "bench" in done.stdout
