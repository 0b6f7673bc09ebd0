"""redis-py, imported only when a Redis feature is used: it is an optional extra."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis

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


def connect(redis: str | Redis) -> tuple[Redis, bool]:
    """A client for ``redis`` (a URL, or a client used as is) and whether we own it."""
    if isinstance(redis, str):
        client: Redis = redis_asyncio().from_url(redis)
        return client, True
    module = redis_asyncio()
    if not isinstance(redis, module.Redis):
        raise TypeError(f"redis must be a URL or a redis.asyncio.Redis client, got {redis!r}")
    return redis, False


def text(value: bytes | str | None) -> str | None:
    """A Redis reply as text (a client made with decode_responses=True gives str already)."""
    return value.decode() if isinstance(value, bytes) else value
