"""JSON decoding for event data: orjson when it is installed (several times faster), else json.

Both raise a subclass of ``json.JSONDecodeError`` (so of ``ValueError``) on malformed input.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Union

Loads = Callable[[Union[str, bytes]], Any]

try:
    import orjson

    loads: Loads = orjson.loads
    BACKEND = "orjson"
except ImportError:  # pragma: no cover - exercised by the tests that hide orjson
    loads = json.loads
    BACKEND = "json"

__all__ = ["BACKEND", "loads"]
