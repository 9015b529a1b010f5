"""A sandbox of both gateways, for testing code that sends messages without sending any.

::

    fake = FakeGateway()
    async with IsmsClient(username=SANDBOX_USERNAME, password=SANDBOX_PASSWORD,
                          transport=fake.transport()) as isms:
        await isms.send_sms("60123456789", "hello")
    assert fake.sent_to("60123456789")
"""

from ._asgi import serve
from ._control import CallbackFailed
from ._faults import CHAOS_FAULTS
from ._http import WebhookTarget
from ._reconcile import Reconciliation, reconcile
from ._records import Fault, SentMessage
from .gateway import (
    SANDBOX_APP_ID,
    SANDBOX_APP_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    SANDBOX_WABA_NUMBER,
    FakeGateway,
)

__all__ = [
    "CHAOS_FAULTS",
    "SANDBOX_APP_ID",
    "SANDBOX_APP_SECRET",
    "SANDBOX_PASSWORD",
    "SANDBOX_USERNAME",
    "SANDBOX_WABA_NUMBER",
    "CallbackFailed",
    "FakeGateway",
    "Fault",
    "Reconciliation",
    "SentMessage",
    "WebhookTarget",
    "reconcile",
    "serve",
]
