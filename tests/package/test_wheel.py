"""The release wheel that `make wheel` leaves in dist/ (`make test` builds it first): one abi3
manylinux wheel on the glibc 2.17 baseline plus an sdist, and the wheel installs and runs in a
fresh virtual environment of every CPython >= 3.9 found here (pyenv's versions and python3.N on
PATH), with no Rust toolchain on PATH: a smoke test, then `fastsse demo --quick`.

Installing takes the dependencies (httpx, anyio) from the package index, as users get them.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
SOURCES = [ROOT / "src", ROOT / "python", ROOT / "Cargo.toml", ROOT / "pyproject.toml"]
MIN_VERSION = (3, 9)
#: Minutes for the slow steps (a cold pip cache downloads the dependencies).
STEP_TIMEOUT = 300


def cpythons() -> dict[str, Path]:
    """One interpreter per CPython minor version >= 3.9: "3.N" -> path."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(pyenv.glob("*/bin/python3"))
    for minor in range(MIN_VERSION[1], 20):
        found = shutil.which(f"python3.{minor}")
        if found:
            candidates.append(Path(found))
    found_versions: dict[str, Path] = {}
    for python in candidates:
        probe = subprocess.run(
            [python, "-c", "import sys; print(sys.implementation.name, *sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        name, *version = probe.stdout.split() or ["?"]
        if probe.returncode == 0 and name == "cpython" and tuple(map(int, version)) >= MIN_VERSION:
            found_versions.setdefault(".".join(version), python)
    return {version: found_versions[version] for version in sorted(found_versions, key=numbers)}


def numbers(version: str) -> tuple[int, ...]:
    return tuple(map(int, version.split(".")))


PYTHONS = cpythons()


def built(pattern: str) -> Path:
    """The one file of `make wheel` matching ``pattern``, checked to be newer than the sources."""
    found = sorted(DIST.glob(pattern))
    assert len(found) == 1, f"`make wheel` leaves one {pattern} in dist/, found {found}"
    newest_source = max(
        path.stat().st_mtime
        for source in SOURCES
        for path in ([source] if source.is_file() else source.rglob("*"))
        # Sources only: not the editable install's extension module or bytecode.
        if path.is_file() and path.suffix not in (".so", ".pyc")
    )
    assert found[0].stat().st_mtime >= newest_source, (
        f"{found[0].name} is older than the sources: run `make wheel` (`make test` does)"
    )
    return found[0]


def without_rust() -> dict[str, str]:
    """The environment with every PATH entry holding cargo or rustc removed."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CARGO", "RUSTUP", "RUSTC", "PYTHON", "VIRTUAL_ENV", "PIP_"))
    }
    env["PATH"] = os.pathsep.join(
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not any((Path(entry) / tool).exists() for tool in ("cargo", "rustc"))
    )
    env["PYTHONNOUSERSITE"] = "1"
    return env


def run(command: list[str | Path], **options: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
        **options,  # type: ignore[call-overload]
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_make_wheel_leaves_one_abi3_manylinux2014_wheel_and_an_sdist():
    wheel = built("*.whl")
    machine = platform.machine()
    assert wheel.name == (
        f"fastsse-0.1.0-cp39-abi3-manylinux2014_{machine}.manylinux_2_17_{machine}.whl"
    )
    sdist = built("*.tar.gz")
    assert sdist.name == "fastsse-0.1.0.tar.gz"
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
    needed = [
        "Cargo.toml",
        "Cargo.lock",
        "pyproject.toml",
        "src/python/mod.rs",
        "python/fastsse/py.typed",
        "python/fastsse/redis/append.lua",
    ]
    assert {f"fastsse-0.1.0/{name}" for name in needed} <= names
    # auditwheel reads the symbol versions the extension needs: glibc 2.17 at most.
    shown = run([sys.executable, "-m", "auditwheel", "show", wheel]).stdout
    assert f'consistent with the following platform tag:\n"manylinux_2_17_{machine}"' in shown


def test_cpythons_from_3_9_are_available():
    assert PYTHONS, "no CPython >= 3.9 found (pyenv versions or python3.N on PATH)"
    assert all(numbers(version) >= MIN_VERSION for version in PYTHONS)


SMOKE = """
import shutil, sys
from pathlib import Path
import fastsse
from fastsse import _fastsse

assert shutil.which("cargo") is None and shutil.which("rustc") is None, "Rust on PATH"
assert Path(fastsse.__file__).is_relative_to(Path(sys.prefix)), fastsse.__file__
assert Path(_fastsse.__file__).name == "_fastsse.abi3.so", _fastsse.__file__
parser = fastsse.Parser(max_event_size=64, on_oversize="skip")
events = []
chunks = [b"\\xef\\xbb", b"\\xbfid: 1\\nevent: greet\\nda", b"ta: h\\xc3", b"\\xa9\\r"]
chunks.append(b"\\n\\r\\n")
for chunk in chunks:
    events += parser.feed(chunk)
events += parser.feed(b"data: " + b"x" * 100 + b"\\n\\nretry: 99999999999999999999\\ndata: y\\n\\n")
assert events == [
    fastsse.Event(event="greet", data="h\\u00e9", id="1"),
    fastsse.Event(data="y", id="1", retry=99999999999999999999),
], events
assert (parser.oversized, parser.last_event_id, parser.pending) == (1, "1", False)
from fastsse.redis import relay  # reads its Lua script, a package file beside it
assert "FENCED" in relay._APPEND
print(sys.version_info[:2], "ok")
"""


@pytest.mark.parametrize("version", PYTHONS)
def test_the_wheel_installs_and_runs_without_rust(version: str, tmp_path: Path):
    wheel = built("*.whl")
    env = without_rust()
    venv = tmp_path / "venv"
    run([PYTHONS[version], "-m", "venv", venv], env=env)
    python = venv / "bin" / "python"
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    # Binaries only: nothing may be compiled, the wheel least of all.
    run([*pip, "install", "--only-binary=:all:", wheel], env=env, cwd=tmp_path)
    smoke = run([python, "-c", SMOKE], env=env, cwd=tmp_path)
    assert smoke.stdout.strip() == f"{numbers(version)} ok"
    demo = run([venv / "bin" / "fastsse", "demo", "--quick"], env=env, cwd=tmp_path).stdout
    assert "lost / duplicated   0 / 0" in demo
    table = demo[demo.index("Throughput") :].splitlines()[2:]
    assert [line.split()[0] for line in table] == ["fastsse", "pure"]  # no httpx-sse here
