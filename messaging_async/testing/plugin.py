"""pytest plugin (registered as an entry point; nothing happens until a test asks for a
fixture by name): ``fake_gateway``, and clients wired to it with sandbox credentials and
retries that do not sleep.

::

    async def test_sends_the_otp(isms_client, fake_gateway):
        await send_otp(isms_client, "60123456789")
        assert "123456" in fake_gateway.sent_to("60123456789")[0].text
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ..isms import IsmsClient
from ..smscommy import SmsComMyClient
from .gateway import FakeGateway


@pytest.fixture
def fake_gateway() -> FakeGateway:
    """A fresh sandbox of both gateways for one test."""
    return FakeGateway()


@pytest.fixture
async def isms_client(fake_gateway: FakeGateway) -> AsyncIterator[IsmsClient]:
    """An ``IsmsClient`` (SMS and WhatsApp) talking to ``fake_gateway`` in process."""
    async with fake_gateway.isms_client() as client:
        yield client


@pytest.fixture
async def smscommy_client(fake_gateway: FakeGateway) -> AsyncIterator[SmsComMyClient]:
    """An ``SmsComMyClient`` talking to ``fake_gateway`` in process (https base URL, so no
    ``PlainHttpWarning``)."""
    async with fake_gateway.smscommy_client() as client:
        yield client
