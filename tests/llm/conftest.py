"""The fixtures of the LLM tests: the client library, sync or async, the provider's case."""

from __future__ import annotations

from types import ModuleType

import pytest
from support.llm_cases import CASES, LIBRARIES, Case


@pytest.fixture(params=LIBRARIES, ids=lambda lib: lib.__name__)
def lib(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=("sync", "async"))
def kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]
