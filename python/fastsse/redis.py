"""fastsse beyond one machine: a fenced relay into a Redis Stream, and its consumer group.

Needs redis-py: ``pip install 'fastsse[redis]'``. See DESIGN.md section 9 and the README's
"Beyond one machine"::

    feed --> Relay (leader; standbys wait for the lease) --> Redis Stream --> RedisStreamConsumer xN
"""

from __future__ import annotations

from fastsse._redis_client import redis_asyncio
from fastsse._redis_consumer import RedisStreamConsumer
from fastsse._relay import Relay, RelayStats, checkpoint_key, lease_key
from fastsse.checkpoint import RedisCheckpoint

redis_asyncio()  # importing fastsse.redis without redis-py says how to install it

__all__ = [
    "RedisCheckpoint",
    "RedisStreamConsumer",
    "Relay",
    "RelayStats",
    "checkpoint_key",
    "lease_key",
]
