"""redis-py, imported only when a Redis feature is used: it is an optional extra."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    #: What the Redis features take: a standalone client or a cluster client.
    AnyRedis = Union[Redis, RedisCluster]

INSTALL_HINT = "pip install redis"


def redis_asyncio() -> Any:
    """The ``redis.asyncio`` module, or an ImportError that says how to install it."""
    try:
        return importlib.import_module("redis.asyncio")
    except ImportError as error:
        raise ImportError(
            f"fastsse's Redis features need redis-py (redis>=5), which is not installed: "
            f"{INSTALL_HINT}"
        ) from error


def connect(redis: str | AnyRedis, *, cluster: bool = False) -> tuple[AnyRedis, bool]:
    """A client for ``redis`` and whether we own it.

    A URL gives a ``redis.asyncio.Redis``, or with ``cluster`` a
    ``redis.asyncio.cluster.RedisCluster`` (the URL names any node: the others are found
    from it); a client of either kind is used as is.
    """
    module = redis_asyncio()
    if isinstance(redis, str):
        if cluster:
            cluster_client: RedisCluster = module.RedisCluster.from_url(redis)
            return cluster_client, True
        client: Redis = module.from_url(redis)
        return client, True
    if not isinstance(redis, (module.Redis, module.RedisCluster)):
        raise TypeError(
            "redis must be a URL, a redis.asyncio.Redis or a redis.asyncio.cluster.RedisCluster "
            f"client, got {redis!r}"
        )
    return redis, False


def redis_errors() -> tuple[type[BaseException], ...]:
    """The failures of a Redis call that a relay or a worker retries: redis-py's errors, those
    of a cluster client (``RedisClusterException``, no ``RedisError``: no node reachable, a
    slot not served during a failover), and the OS's."""
    exceptions: Any = importlib.import_module("redis.exceptions")
    return (exceptions.RedisError, exceptions.RedisClusterException, OSError)


def key_slot(key: str) -> int:
    """The Redis Cluster hash slot of ``key`` (its ``{hash tag}`` if it has one)."""
    crc: Any = importlib.import_module("redis.crc")
    slot: int = crc.key_slot(key.encode())
    return slot


def text(value: bytes | str | None) -> str | None:
    """A Redis reply as text (a client made with decode_responses=True gives str already)."""
    return value.decode() if isinstance(value, bytes) else value
