"""The pytest plugin: fixtures come from the installed entry point, by name only."""

from __future__ import annotations

from messaging_async import IsmsClient, SmsComMyClient
from messaging_async.testing import FakeGateway, Fault


async def test_fixtures_are_wired_to_one_sandbox(
    fake_gateway: FakeGateway, isms_client: IsmsClient, smscommy_client: SmsComMyClient
) -> None:
    await isms_client.send_sms("60123456789", "Your OTP is 123456")
    await isms_client.send_whatsapp_template("60123456789", "otp", params=["123456"])
    await smscommy_client.send_sms("60123456789", "Hello")
    assert [m.gateway for m in fake_gateway.sent_to("60123456789")] == [
        "isms",
        "whatsapp",
        "smscommy",
    ]
    assert fake_gateway.sent[0].text == "Your OTP is 123456"


async def test_faults_reach_the_wired_clients(
    fake_gateway: FakeGateway, isms_client: IsmsClient
) -> None:
    fake_gateway.inject(Fault.REFUSE, host="www.isms.com.my")
    outcome = await isms_client.send_sms("60123456789", "failover")
    assert outcome.ok
    assert len(fake_gateway.sent) == 1
