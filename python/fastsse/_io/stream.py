"""The stream drivers' public names, where the package has always imported them from:
``AsyncEventStream`` (``_async/stream.py``, the source) and ``EventStream`` (``_sync/stream.py``,
generated from it by scripts/unasync.py), their shared base in ``base.py``."""

from __future__ import annotations

from fastsse._io._async.stream import AsyncEventStream
from fastsse._io._sync.stream import EventStream
from fastsse._io.base import JSON
from fastsse._io.transport import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
from fastsse.protocol import Fault, FaultKind, StreamStats

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "JSON",
    "AsyncEventStream",
    "EventStream",
    "Fault",
    "FaultKind",
    "StreamStats",
]
