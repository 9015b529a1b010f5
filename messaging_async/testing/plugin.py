"""pytest plugin (registered as an entry point; nothing happens until a test asks for a
fixture by name): ``fake_gateway``, and clients wired to it with sandbox credentials and
retries that do not sleep.

::

    @pytest.mark.asyncio  # or @pytest.mark.anyio; neither is needed in pytest-asyncio's auto mode
    async def test_sends_the_otp(isms_client, fake_gateway):
        await send_otp(isms_client, "60123456789")
        assert "123456" in fake_gateway.sent_to("60123456789")[0].text

The client fixtures are plain (sync) fixtures that hand the async set-up to whichever async
plugin runs the test: anyio's when the test uses ``anyio_backend`` (``@pytest.mark.anyio``),
else pytest-asyncio's. An async fixture declared with ``@pytest.fixture`` alone would be
refused by pytest-asyncio's default strict mode, and one declared with
``@pytest_asyncio.fixture`` would open the client on an asyncio loop even for a trio test.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

import pytest

from ..isms import IsmsClient
from ..smscommy import SmsComMyClient
from .gateway import FakeGateway

_PREFIX = "_messaging_async_"


@pytest.fixture
def fake_gateway() -> FakeGateway:
    """A fresh sandbox of both gateways for one test."""
    return FakeGateway()


@pytest.fixture
def isms_client(request: pytest.FixtureRequest, fake_gateway: FakeGateway) -> IsmsClient:
    """An ``IsmsClient`` (SMS and WhatsApp) talking to ``fake_gateway`` in process."""
    client: IsmsClient = request.getfixturevalue(_opened_by_the_test_runner(request, "isms"))
    return client


@pytest.fixture
def smscommy_client(request: pytest.FixtureRequest, fake_gateway: FakeGateway) -> SmsComMyClient:
    """An ``SmsComMyClient`` talking to ``fake_gateway`` in process (https base URL, so no
    ``PlainHttpWarning``)."""
    client: SmsComMyClient = request.getfixturevalue(
        _opened_by_the_test_runner(request, "smscommy")
    )
    return client


def _opened_by_the_test_runner(request: pytest.FixtureRequest, gateway: str) -> str:
    """The name of the async fixture that opens the client on the loop the test runs on."""
    if "anyio_backend" in request.fixturenames:
        return f"{_PREFIX}{gateway}_anyio"
    if request.config.pluginmanager.has_plugin("asyncio"):
        return f"{_PREFIX}{gateway}_asyncio"
    raise pytest.UsageError(
        f"{request.fixturename} is opened in an event loop: run the test with pytest-asyncio "
        "(@pytest.mark.asyncio, or asyncio_mode = auto) or with anyio's plugin "
        "(@pytest.mark.anyio)"
    )


def _opener(gateway: str) -> Callable[[FakeGateway], AsyncGenerator[Any, None]]:
    """A new async generator function each call: pytest-asyncio marks the function object it
    is given, so the anyio and asyncio variants must not share one."""

    async def opened(fake_gateway: FakeGateway) -> AsyncGenerator[Any, None]:
        make = fake_gateway.isms_client if gateway == "isms" else fake_gateway.smscommy_client
        async with make() as client:
            yield client

    return opened


def _asyncio_fixture() -> Callable[..., Any] | None:
    """``pytest_asyncio.fixture`` when pytest-asyncio is installed: the only kind of async
    fixture its strict mode runs."""
    try:
        import pytest_asyncio
    except ImportError:
        return None
    return pytest_asyncio.fixture


# Plain async fixtures: anyio's plugin runs them for tests that use ``anyio_backend``;
# pytest-asyncio's strict mode leaves them alone.
_isms_anyio = pytest.fixture(_opener("isms"), name=f"{_PREFIX}isms_anyio")
_smscommy_anyio = pytest.fixture(_opener("smscommy"), name=f"{_PREFIX}smscommy_anyio")

if (_asyncio := _asyncio_fixture()) is not None:
    _isms_asyncio = _asyncio(_opener("isms"), name=f"{_PREFIX}isms_asyncio")
    _smscommy_asyncio = _asyncio(_opener("smscommy"), name=f"{_PREFIX}smscommy_asyncio")
