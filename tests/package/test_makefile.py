"""The Makefile's setup steps fail with a message that says what to install.

The README's commands build fastsse into a project virtual environment; these tests run the
Makefile's own preparation targets (``venv``, ``rust``) against interpreters and PATHs that
lack what the build needs, as a fresh machine would, and against the interpreter running the
tests, which must give a working environment. Nothing is built or downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")


def make(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None, "the README's commands need make"
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def fake_python(tmp_path: Path, body: str) -> Path:
    """An executable standing in for ``python3``: a Python script run by this interpreter."""
    script = tmp_path / "python3"
    script.write_text(f"#!{sys.executable}\nimport sys\n{textwrap.dedent(body)}")
    script.chmod(0o755)
    return script


def test_a_missing_interpreter_is_named(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = make("venv", f"PYTHON={tmp_path / 'no-such-python3'}", f"VENV={venv}")
    assert done.returncode != 0
    assert "no-such-python3' not found: install Python >= 3.9" in done.stderr
    assert not venv.exists()


def test_an_old_interpreter_is_refused(tmp_path: Path) -> None:
    python = fake_python(
        tmp_path,
        """
        if sys.argv[1] == "-V":
            print("Python 3.8.10")
        sys.exit(1)  # -c: the version check fails as it would on 3.8
        """,
    )
    venv = tmp_path / "venv"
    done = make("venv", f"PYTHON={python}", f"VENV={venv}")
    assert done.returncode != 0
    assert "fastsse needs Python >= 3.9; " in done.stderr
    assert "is Python 3.8.10" in done.stderr
    assert not venv.exists()


def test_a_debian_python_without_python3_venv_gets_the_package_name(tmp_path: Path) -> None:
    # What Debian's and Ubuntu's python3 do without python3-venv: the environment is half made
    # (bin/python exists, pip does not), ensurepip's absence is reported, and the exit is 1.
    python = fake_python(
        tmp_path,
        """
        import pathlib
        if sys.argv[1:3] != ["-m", "venv"]:
            exec(sys.argv[2])  # -c CODE
            sys.exit(0)
        bin = pathlib.Path(sys.argv[3], "bin")
        bin.mkdir(parents=True)
        (bin / "python").symlink_to(sys.executable)
        print("The virtual environment was not created successfully because ensurepip is not")
        print("available.  On Debian/Ubuntu systems, you need to install the python3-venv")
        sys.exit(1)
        """,
    )
    venv = tmp_path / "venv"
    done = make("venv", f"PYTHON={python}", f"VENV={venv}")
    assert done.returncode != 0
    assert "-m venv" in done.stderr
    assert "failed (see above), so nothing was installed" in done.stderr
    assert "sudo apt-get install python3-venv" in done.stderr
    # Removed, so that the next `make demo` tries again instead of using a venv without pip.
    assert not venv.exists()


def test_a_missing_rust_toolchain_is_named(tmp_path: Path) -> None:
    done = make("rust", path=str(tmp_path))  # a PATH with no cargo on it
    assert done.returncode != 0
    assert "building fastsse needs a Rust toolchain" in done.stderr
    assert "https://rustup.rs" in done.stderr


def test_the_venv_target_makes_a_working_environment_with_pip(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    done = make("venv", f"PYTHON={base}", f"VENV={venv}")
    assert done.returncode == 0, done.stderr
    assert f"creating the virtual environment {venv}" in done.stdout
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr
    assert str(venv) in pip.stdout  # this environment's own pip, not the system's
    # A second run finds it and does nothing.
    again = make("venv", f"PYTHON={base}", f"VENV={venv}")
    assert again.returncode == 0
    assert "creating" not in again.stdout


@pytest.mark.parametrize(
    ("target", "extra"), [("demo", "--extras aiohttp"), ("dev", "--group dev")]
)
def test_the_build_targets_show_cargo_and_little_else(target: str, extra: str) -> None:
    # --dry-run prints the commands without running them. The Rust build runs under maturin in
    # the foreground, so cargo's progress shows; pip never runs verbose (`pip -v` printed about
    # 120 lines before the demo) and is quiet where maturin calls it for the dependencies.
    done = make("--dry-run", target)
    assert done.returncode == 0, done.stderr
    commands = done.stdout.splitlines()
    pips = [line for line in commands if " -m pip " in line]
    assert pips
    assert all(" install -q " in line for line in pips), pips
    assert not [line for line in pips if " -v " in line or "--verbose" in line]
    (build,) = [line for line in commands if " -m maturin develop " in line]
    assert " --release " in build
    assert build.endswith(f" {extra}")
    assert "PIP_QUIET=1 " in build
    assert " -q " not in build.split(" -m maturin ")[1]  # maturin -q would hide cargo's lines
