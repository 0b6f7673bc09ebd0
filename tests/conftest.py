from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (marked ``@pytest.mark.anyio``) run on asyncio, the loop SSEServer uses."""
    return "asyncio"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server of the test's own, on a free port (fails if none is installed)."""
    with RedisServer(tmp_path / "redis") as server:
        yield server
