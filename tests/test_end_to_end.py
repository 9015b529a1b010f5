"""The SDK against the sandbox, in process and over a real loopback socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from messaging_async import (
    IsmsClient,
    ReplyWindowClosedError,
    Sms,
    SmsComMyClient,
    WhatsAppTemplate,
)
from messaging_async.testing import FakeGateway, Fault, reconcile, serve


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test of this module runs on asyncio and on trio."""
    return str(request.param)


class Wired:
    """Both clients pointed at one sandbox, however it is reached."""

    def __init__(self, fake: FakeGateway, isms: IsmsClient, smsmy: SmsComMyClient):
        self.fake, self.isms, self.smsmy = fake, isms, smsmy


def clients(fake: FakeGateway, base_url: str | None) -> Wired:
    isms = fake.isms_client(base_url=base_url, sender_id="MyCo", timeout=2.0)
    return Wired(fake, isms, fake.smscommy_client(base_url=base_url, timeout=2.0))


@pytest.fixture(params=["in_process", "socket"])
async def wired(request: pytest.FixtureRequest) -> AsyncIterator[Wired]:
    fake = FakeGateway()
    if request.param == "in_process":
        both = clients(fake, None)
        async with both.isms, both.smsmy:
            yield both
    else:
        async with serve(fake) as url:
            both = clients(fake, url)
            async with both.isms, both.smsmy:
                yield both


def personalised(count: int) -> list[Sms]:
    texts = ["Hi {i}, your parcel is here", "Salam {i}, pesanan anda sampai", "您好 {i} 包裹已到"]
    return [Sms(to=f"6012{i:07d}", text=texts[i % 3].format(i=i), ref=i) for i in range(count)]


async def test_isms_bulk_classic_balance_and_whatsapp(wired: Wired) -> None:
    messages = personalised(260)
    report = await wired.isms.send_sms_bulk(messages)
    assert reconcile(messages, report.outcomes, wired.fake.sent).check() == {"accepted": 260}
    assert report.credits_used == sum(m.credits for m in wired.fake.sent)
    classic = await wired.isms.send_sms_classic(["60130000001", "60130000002"], "Sale today")
    assert classic.all_accepted
    balance = await wired.isms.get_balance()
    assert balance.credits == wired.fake.isms_credits
    with pytest.raises(ReplyWindowClosedError):
        await wired.isms.send_whatsapp_text("60123456789", "hello?")
    await wired.fake.receive_whatsapp("60123456789", "hi")
    assert (await wired.isms.send_whatsapp_text("60123456789", "hello!")).ok
    templates = await wired.isms.send_whatsapp_bulk(
        WhatsAppTemplate(to=f"6014{n:07d}", template_code="order_shipped", params=[n])
        for n in range(30)
    )
    assert templates.all_accepted
    assert {(m.params or {})["param1"] for m in wired.fake.sent if m.template} == {
        str(n) for n in range(30)
    }


async def test_smscommy_every_endpoint(wired: Wired) -> None:
    smsmy = wired.smsmy
    sent = [
        await smsmy.send_sms("60123456789", "Hello"),
        await smsmy.send_sms("60123456789", "你好 😀", flash=True),
        await smsmy.send_sms_unicode("60123456789", "مرحبا"),
        await smsmy.send_binary("60123456789", "0B05040B8423F0", udh=False),
        await smsmy.send_barcode("60123456789", "Code %barcode%", msgtype="textlink"),
    ]
    assert [m.text for m in wired.fake.sent] == [
        "Hello",
        "你好 😀",
        "مرحبا",
        "0B05040B8423F0",
        "Code %barcode%",
    ]
    assert [o.message_id for o in sent] == [m.message_id for m in wired.fake.sent]
    same = await smsmy.send_sms_same_text([f"6019{i:07d}" for i in range(120)], "Sale")
    assert same.all_accepted
    bulk = await smsmy.send_sms_bulk(personalised(40))
    assert bulk.all_accepted
    credits = await smsmy.get_credits()
    assert credits.remaining == wired.fake.smscommy_credits
    assert credits.used == wired.fake.smscommy_used
    transfer = await smsmy.transfer_credits("customer1", 25, path="ITransferCredits.aspx")
    assert wired.fake.customers["customer1"] == transfer.credits


@pytest.mark.parametrize(
    "fault", [Fault.RESET, Fault.SERVER_ERROR, Fault.TRUNCATED, Fault.NOT_JSON]
)
async def test_isms_faults_never_duplicate_and_account_for_everyone(
    wired: Wired, fault: Fault
) -> None:
    wired.fake.inject(fault, endpoint="isms_send_json.php", times=2)
    messages = personalised(300)
    report = await wired.isms.send_sms_bulk(messages)
    counts = reconcile(messages, report.outcomes, wired.fake.sent).check()
    assert counts["unknown"] == 100  # two chunks hit, never re-sent
    assert counts["accepted"] == 200


@pytest.mark.parametrize("fault", [Fault.RESET, Fault.SERVER_ERROR, Fault.TRUNCATED, Fault.HANG])
async def test_smscommy_faults_are_retried_with_the_same_seqno(wired: Wired, fault: Fault) -> None:
    if fault is Fault.HANG:
        wired.fake.inject(fault, endpoint="ISendSMS.aspx", times=1)
    else:
        wired.fake.inject(fault, endpoint="ISendSMS.aspx", times=3)
    messages = personalised(12)
    report = await wired.smsmy.send_sms_bulk(messages)
    assert reconcile(messages, report.outcomes, wired.fake.sent).check() == {"accepted": 12}
    assert len(wired.fake.sent) == 12  # exactly once each, whatever was retried


async def test_credits_running_out_stops_the_run(wired: Wired) -> None:
    wired.fake.isms_credits = wired.fake.isms_credits * 0 + 120
    messages = [Sms(to=f"6012{i:07d}", text=f"Hi {i}") for i in range(500)]
    report = await wired.isms.send_sms_bulk(messages)
    counts = reconcile(messages, report.outcomes, wired.fake.sent).check()
    assert counts["accepted"] == 120
    assert report.stopped_by is not None
    assert report.stopped_by.code == -1004
