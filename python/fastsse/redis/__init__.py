"""fastsse beyond one machine: a fenced relay into a Redis Stream, and its consumer group.

Needs redis-py (``pip install redis``); each class says so when it is made without it. See
DESIGN.md section 9 and the README's "Beyond one machine"::

    feed --> Relay (leader; standbys wait for the lease) --> Redis Stream --> RedisStreamConsumer xN
"""

from __future__ import annotations

from fastsse.redis.checkpoint import RedisCheckpoint
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
