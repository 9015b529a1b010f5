"""The ledger's tests run on asyncio AND trio through anyio's pytest plugin.

The project runs pytest-asyncio in auto mode, which claims every coroutine test for
asyncio; tests marked ``@pytest.mark.anyio`` here are handed back to anyio's plugin so the
``anyio_backend`` parameter really picks the event loop.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
from pytest_asyncio.plugin import PytestAsyncioFunction


@pytest.hookimpl(hookwrapper=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> Generator[None, Any, None]:
    outcome = yield
    result = outcome.get_result()
    if not result:
        return
    items = result if isinstance(result, list) else [result]
    outcome.force_result([_for_anyio(item) for item in items])


def _for_anyio(item: Any) -> Any:
    if not isinstance(item, PytestAsyncioFunction) or item.get_closest_marker("anyio") is None:
        return item
    plain = pytest.Function.from_parent(
        item.parent,
        name=item.name,
        callspec=getattr(item, "callspec", None),
        callobj=item.obj,
        fixtureinfo=item._fixtureinfo,
        keywords=item.keywords,
        originalname=item.originalname,
    )
    plain.own_markers = [mark for mark in item.own_markers if mark.name != "asyncio"]
    return plain


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
