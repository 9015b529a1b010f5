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
from ..retry import RetryPolicy
from ..smscommy import SmsComMyClient
from .gateway import (
    SANDBOX_APP_ID,
    SANDBOX_APP_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    SANDBOX_WABA_NUMBER,
    FakeGateway,
)

SANDBOX_SMSCOMMY_URL = "https://www.sms.com.my/websmsapi"


@pytest.fixture
def fake_gateway() -> FakeGateway:
    """A fresh sandbox of both gateways for one test."""
    return FakeGateway()


@pytest.fixture
async def isms_client(fake_gateway: FakeGateway) -> AsyncIterator[IsmsClient]:
    """An ``IsmsClient`` (SMS and WhatsApp) talking to ``fake_gateway`` in process."""
    async with IsmsClient(
        username=SANDBOX_USERNAME,
        password=SANDBOX_PASSWORD,
        app_id=SANDBOX_APP_ID,
        app_secret=SANDBOX_APP_SECRET,
        waba_number=SANDBOX_WABA_NUMBER,
        transport=fake_gateway.transport(),
        retry=RetryPolicy.no_wait(),
    ) as client:
        yield client


@pytest.fixture
async def smscommy_client(fake_gateway: FakeGateway) -> AsyncIterator[SmsComMyClient]:
    """An ``SmsComMyClient`` talking to ``fake_gateway`` in process (https base URL, so no
    ``PlainHttpWarning``)."""
    async with SmsComMyClient(
        username=SANDBOX_USERNAME,
        password=SANDBOX_PASSWORD,
        base_url=SANDBOX_SMSCOMMY_URL,
        transport=fake_gateway.transport(),
        retry=RetryPolicy.no_wait(),
    ) as client:
        yield client
