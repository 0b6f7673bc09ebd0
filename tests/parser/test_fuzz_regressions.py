"""Every input kept for the Python-level fuzzer (fuzz/python_parser.py) in
fuzz/seeds/python_parser/, its seeds and each finding, replayed through its checks: the Rust
parser and the pure parser agree call by call, with the whole-stream reading and the spec oracle.
(The Rust fuzzer's kept inputs are replayed by `cargo test`, in fuzz/properties.rs.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
SEEDS = sorted((FUZZ / "seeds" / "python_parser").iterdir())


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("python_parser", FUZZ / "python_parser.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = load_harness()


def test_there_are_kept_inputs():
    assert len(SEEDS) >= 5


@pytest.mark.parametrize("seed", SEEDS, ids=lambda path: path.name)
def test_kept_fuzz_input(seed: Path):
    harness.one_input(seed.read_bytes())


def test_the_input_format_reaches_every_option():
    # mode 2 (error), limit 1 + 9, resume id "42", comments, chunks: 2 bytes as bytearray, an
    # empty memoryview, end of connection, then the rest.
    layout = 0x80 | 0x20 | 3
    plan, options = harness.plan_of(bytes([2, 9, layout, 0x42, 0x80, 0xFF]) + b"data: x\n\n")
    assert options == {
        "last_event_id": "42",
        "comments": True,
        "max_event_size": 10,
        "on_oversize": "error",
    }
    (first, first_chunks), (second, second_chunks) = plan
    assert (first, second) == (b"da", b"ta: x\n\n")
    assert [type(chunk) for chunk in first_chunks] == [bytearray, memoryview]
    assert [bytes(chunk) for chunk in first_chunks] == [b"da", b""]
    assert second_chunks == [b"ta: x\n\n"]
    assert harness.plan_of(b"")[1] == {"last_event_id": "", "comments": False}
