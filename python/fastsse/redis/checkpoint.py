"""A checkpoint in Redis: the ``Checkpoint`` interface of ``fastsse.consume`` on a Redis string."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastsse.consume.checkpoint import Checkpoint
from fastsse.redis.client import connect, text

if TYPE_CHECKING:
    from fastsse.redis.client import AnyRedis


class RedisCheckpoint(Checkpoint):
    """A checkpoint in a Redis string at ``key`` (needs redis-py: ``pip install redis``).

    ``redis`` is a URL (``redis://host:6379/0``; the client is made and closed here; with
    ``cluster=True`` a Redis Cluster client, the URL naming any node) or a client,
    ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster`` (left open).
    ``fastsse relay`` keeps its position in the same form, at
    ``fastsse.redis.checkpoint_key(KEY)`` (``{KEY}:last-event-id``), so
    ``RedisCheckpoint(url, checkpoint_key(KEY))`` reads where a relay is. A commit is a single
    SET: atomic.
    """

    def __init__(self, redis: str | AnyRedis, key: str, *, cluster: bool = False) -> None:
        if not isinstance(key, str):
            raise TypeError(f"key must be a str, got {key!r}")
        self.key = key
        self._client, self._owns_client = connect(redis, cluster=cluster)

    def __repr__(self) -> str:
        return f"RedisCheckpoint(<{self._client!r}>, {self.key!r})"

    async def load(self) -> str | None:
        return text(await self._client.get(self.key))

    async def commit(self, last_event_id: str) -> None:
        if not isinstance(last_event_id, str):
            raise TypeError(f"last_event_id must be a str, got {last_event_id!r}")
        await self._client.set(self.key, last_event_id.encode())

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
