from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (marked ``@pytest.mark.anyio``) run on asyncio, the loop SSEServer uses."""
    return "asyncio"
