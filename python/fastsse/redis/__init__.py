"""fastsse beyond one machine: a fenced relay into a Redis Stream, and its consumer group.

Needs redis-py (``pip install redis``); each class says so when it is made without it. See
DESIGN.md section 9 and the README's "Beyond one machine"::

    feed --> Relay (leader; standbys wait for the lease) --> Redis Stream --> RedisStreamConsumer xN

The relay and the worker are imported on first use: ``import fastsse`` loads only
``RedisCheckpoint`` from here (a public name of the package), and ``fastsse tail`` none of
the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fastsse.redis.checkpoint import RedisCheckpoint

if TYPE_CHECKING:
    from fastsse.redis.relay import (
        CheckpointBackwardsError,
        FeedWithoutIdsError,
        Relay,
        RelayError,
        RelayStats,
        checkpoint_key,
        lease_key,
    )
    from fastsse.redis.worker import HandlerTimeoutError, RedisStreamConsumer, RedisWorkerStats

__all__ = [
    "CheckpointBackwardsError",
    "FeedWithoutIdsError",
    "HandlerTimeoutError",
    "RedisCheckpoint",
    "RedisStreamConsumer",
    "RedisWorkerStats",
    "Relay",
    "RelayError",
    "RelayStats",
    "checkpoint_key",
    "lease_key",
]

#: The worker's names; every other name of ``__all__`` but RedisCheckpoint is the relay's.
_WORKER = ("HandlerTimeoutError", "RedisStreamConsumer", "RedisWorkerStats")


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{'worker' if name in _WORKER else 'relay'}")
    value = getattr(module, name)
    globals()[name] = value  # Looked up once.
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
