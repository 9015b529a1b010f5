"""Acceptance for sms.com.my (HTTP Specification 1.84, CONTRACT C)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from messaging_async import (
    SMSCOMMY_BASE_URL,
    AuthenticationError,
    CreditTransferError,
    DuplicateRequestError,
    Encoding,
    InsufficientCreditsError,
    InvalidMessageError,
    InvalidNumberError,
    OutcomeStatus,
    OutcomeUnknownError,
    PlainHttpWarning,
    RetryPolicy,
    Sms,
    SmsComMyClient,
    UnexpectedAnswerError,
    ValidationError,
)
from messaging_async.testing import FakeGateway, Fault, serve

from .gateway import PASSWORD, USERNAME

BASE = "https://www.sms.com.my/websmsapi"


def client(**overrides: Any) -> SmsComMyClient:
    settings: dict[str, Any] = {
        "username": USERNAME,
        "password": PASSWORD,
        "sender": "MyCo",
        "base_url": BASE,
        "retry": RetryPolicy.no_wait(),
    }
    settings.update(overrides)
    return SmsComMyClient(**settings)


def form(call: Any) -> dict[str, str]:
    return {
        k: v[0] for k, v in parse_qs(call.request.content.decode(), keep_blank_values=True).items()
    }


def sent(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text="1701:" + form(type("C", (), {"request": request}))["seqno"])


async def capture(
    call: Any, answer: str = "1701:1143012345", path: str = "ISendSMS.aspx"
) -> dict[str, str]:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/{path}").mock(return_value=httpx.Response(200, text=answer))
        async with client() as smsmy:
            await call(smsmy)
    assert route.call_count == 1
    assert route.calls[0].request.url.query == b""
    assert route.calls[0].request.headers["content-type"] == "application/x-www-form-urlencoded"
    return form(route.calls[0])


def common(message: str, type_: str, seqno: str, **extra: str) -> dict[str, str]:
    return {
        "username": USERNAME,
        "password": PASSWORD,
        "message": message,
        "mobile": "60123456789",
        "sender": "MyCo",
        "type": type_,
        "seqno": seqno,
        **extra,
    }


@pytest.mark.parametrize(
    ("text", "flash", "message", "type_"),
    [
        ("Hello", False, "Hello", "1"),
        ("Hello", True, "Hello", "2"),
        ("ABC", None, "004100420043", "3"),  # forced Unicode: the known vector
        ("你好", False, "4F60597D", "3"),
        ("你好", True, "4F60597D", "4"),
        ("ok 😀", False, "006F006B0020D83DDE00", "3"),  # an emoji's surrogate pair
    ],
)
async def test_isendsms_bodies_for_types_1_to_4(
    text: str, flash: bool | None, message: str, type_: str
) -> None:
    async def call(smsmy: SmsComMyClient) -> None:
        encoding = Encoding.UNICODE if flash is None else None
        outcome = await smsmy.send_sms(
            "+60 12-345 6789", text, flash=bool(flash), encoding=encoding, seqno="seq-1"
        )
        assert outcome.message_id == "1143012345"
        assert outcome.seqno == "seq-1"

    assert await capture(call) == common(message, type_, "seq-1")


async def test_binary_types_5_and_6() -> None:
    with_udh = await capture(
        lambda s: s.send_binary("60123456789", "0b05040b8423f0", udh=True, seqno="b1")
    )
    without = await capture(lambda s: s.send_binary("60123456789", "CAFE", udh=False, seqno="b2"))
    assert with_udh == common("0B05040B8423F0", "5", "b1")
    assert without == common("CAFE", "6", "b2")


async def test_unicode_endpoint_sends_text_as_it_is() -> None:
    body = await capture(
        lambda s: s.send_sms_unicode("60123456789", "你好", seqno="u1"), path="ISendSMSUnicode.aspx"
    )
    assert body == common("你好", "3", "u1")


async def test_barcode_endpoint() -> None:
    body = await capture(
        lambda s: s.send_barcode("60123456789", "Your code: %barcode%", msgtype="mms", seqno="c1"),
        path="ISendSMS2D.aspx",
    )
    assert body == {
        "username": USERNAME,
        "password": PASSWORD,
        "message": "Your code: %barcode%",
        "mobile": "60123456789",
        "sender": "MyCo",
        "msgtype": "MMS",
        "seqno": "c1",
    }


async def test_generated_seqnos_are_unique_and_short() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/ISendSMS.aspx").mock(side_effect=sent)
        async with client() as smsmy:
            report = await smsmy.send_sms_bulk(
                Sms(to=f"6012{i:07d}", text=f"hi {i}") for i in range(200)
            )
    seqnos = [form(call)["seqno"] for call in route.calls]
    assert len(set(seqnos)) == 200
    assert all(1 <= len(seqno) <= 20 for seqno in seqnos)
    assert sorted(o.seqno or "" for o in report.outcomes) == sorted(seqnos)
    assert all(o.message_id == o.seqno for o in report.outcomes)  # each its own answer


async def test_no_dr_batches_are_comma_joined_with_one_outcome_each() -> None:
    numbers = [f"6013{i:07d}" for i in range(120)]
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/ISendSMSNoDR.aspx").mock(
            return_value=httpx.Response(200, text="1701")
        )
        async with client(no_dr_batch_size=50) as smsmy:
            report = await smsmy.send_sms_same_text(numbers, "Sale today")
    bodies = [form(call) for call in route.calls]
    assert sorted(len(body["mobile"].split(",")) for body in bodies) == [20, 50, 50]
    assert sorted(n for body in bodies for n in body["mobile"].split(",")) == numbers
    first = next(body for body in bodies if body["mobile"].startswith("60130000000,"))
    assert first == {
        "username": USERNAME,
        "password": PASSWORD,
        "message": "Sale today",
        "mobile": ",".join(numbers[:50]),
        "sender": "MyCo",
        "type": "1",
        "seqno": first["seqno"],
    }
    assert report.all_accepted
    assert all(
        o.message_id is None and "no message id" in (o.reason or "") for o in report.outcomes
    )


async def test_no_dr_answer_per_number_is_used_when_counts_match() -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{BASE}/ISendSMSNoDR.aspx").mock(
            return_value=httpx.Response(200, text="1701\r\n1705\r\n1701")
        )
        async with client() as smsmy:
            report = await smsmy.send_sms_same_text(
                ["60123456781", "60123456782", "60123456783"], "Hi"
            )
    assert [o.status for o in report.outcomes] == [
        OutcomeStatus.ACCEPTED,
        OutcomeStatus.REJECTED,
        OutcomeStatus.ACCEPTED,
    ]
    assert isinstance(report.outcomes[1].error, InvalidNumberError)


async def test_read_timeout_then_1718_is_one_accepted_outcome_with_the_same_seqno() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/ISendSMS.aspx").mock(
            side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, text="1718")]
        )
        async with client() as smsmy:
            outcome = await smsmy.send_sms("60123456789", "Your OTP is 123456")
    assert outcome.status is OutcomeStatus.ACCEPTED
    assert outcome.message_id is None
    assert "earlier attempt" in (outcome.reason or "")
    seqnos = [form(call)["seqno"] for call in route.calls]
    assert len(seqnos) == 2
    assert seqnos[0] == seqnos[1] == outcome.seqno


async def test_1703_and_5xx_are_retried_with_the_same_seqno() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/ISendSMS.aspx").mock(
            side_effect=[
                httpx.Response(200, text="1703"),
                httpx.Response(502, text="<html/>"),
                httpx.Response(200, text="1701:1143000077"),
            ]
        )
        async with client() as smsmy:
            outcome = await smsmy.send_sms("60123456789", "hi")
    assert outcome.message_id == "1143000077"
    assert len({form(call)["seqno"] for call in route.calls}) == 1
    assert route.call_count == 3


async def test_1703_every_time_ends_unknown_with_the_seqno_to_resend_with() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/ISendSMS.aspx").mock(
            return_value=httpx.Response(200, text="1703")
        )
        async with client(retry=RetryPolicy.no_wait(max_attempts=3)) as smsmy:
            with pytest.raises(OutcomeUnknownError, match="seqno=keep-me") as caught:
                await smsmy.send_sms("60123456789", "hi", seqno="keep-me")
    assert caught.value.outcome is not None
    assert caught.value.outcome.seqno == "keep-me"
    assert route.call_count == 3
    assert {form(call)["seqno"] for call in route.calls} == {"keep-me"}


async def test_a_maintenance_page_is_retried_and_then_reported_with_its_text() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/ISendSMS.aspx").mock(
            side_effect=[
                httpx.Response(200, text="Service unavailable"),
                httpx.Response(200, text="1701:1143000009"),
            ]
        )
        async with client() as smsmy:
            assert (await smsmy.send_sms("60123456789", "hi")).message_id == "1143000009"
    assert route.call_count == 2


async def test_a_first_1718_to_a_callers_seqno_is_accepted_earlier_not_rejected() -> None:
    """A seqno the caller gives again (a resend of an ``unknown`` row) answered 1718 on the
    first attempt: the gateway already has that message and made no duplicate, so it is
    ``accepted``, its message id unknown. A seqno of our own answered 1718 is still refused."""
    with respx.mock(assert_all_called=False) as mock:
        mock.post(url__regex=rf"{BASE}/ISendSMS(Unicode)?\.aspx").mock(
            return_value=httpx.Response(200, text="1718")
        )
        async with client() as smsmy:
            single = await smsmy.send_sms("60123456789", "hi", seqno="used-before")
            report = await smsmy.send_sms_bulk(
                [Sms(to="60123456789", text="hi", seqno="used-before")]
            )
            unicode = await smsmy.send_sms_unicode("60123456789", "hi", seqno="used-before")
            with pytest.raises(DuplicateRequestError):
                await smsmy.send_sms("60123456789", "hi")  # our seqno: someone else's record
    for outcome in (single, report.outcomes[0], unicode):
        assert outcome.status is OutcomeStatus.ACCEPTED
        assert outcome.message_id is None
        assert outcome.seqno == "used-before"
        assert outcome.code == 1718
        assert "already accepted earlier (1718)" in (outcome.reason or "")


async def test_1704_in_the_middle_of_a_bulk_run_leaves_later_messages_not_sent() -> None:
    calls = 0

    def credits_run_out(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, text="1704" if calls >= 40 else f"1701:{1_143_000_000 + calls}")

    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/ISendSMS.aspx").mock(side_effect=credits_run_out)
        async with client(max_concurrency=1) as smsmy:
            report = await smsmy.send_sms_bulk(
                Sms(to=f"6012{i:07d}", text=f"hi {i}") for i in range(100)
            )
    assert route.call_count == 40
    assert report.counts["accepted"] == 39
    assert isinstance(report.outcomes[39].error, InsufficientCreditsError)
    assert [o.status for o in report.outcomes[40:]] == [OutcomeStatus.NOT_SENT] * 60
    assert isinstance(report.stopped_by, InsufficientCreditsError)


@pytest.mark.parametrize(
    ("answer", "error"),
    [("1702", AuthenticationError), ("1705", InvalidNumberError), ("1706", InvalidMessageError)],
)
async def test_codes_raise_their_errors(answer: str, error: type[Exception]) -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{BASE}/ISendSMS.aspx").mock(return_value=httpx.Response(200, text=answer))
        async with client() as smsmy:
            with pytest.raises(error):
                await smsmy.send_sms("60123456789", "hi")


async def test_an_unexpected_body_is_unknown_and_quotes_it_without_credentials() -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{BASE}/ISendSMS.aspx").mock(
            return_value=httpx.Response(200, text=f"Error: user {USERNAME} pwd {PASSWORD} locked")
        )
        async with client() as smsmy:
            with pytest.raises(OutcomeUnknownError, match="locked") as caught:
                await smsmy.send_sms("60123456789", "hi")
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "used", "remaining"),
    [
        ("Credit Used: 1,200 Remaining: 800.5", Decimal(1200), Decimal("800.5")),
        ('{"CreditUsed": "10", "CreditLeft": "90"}', Decimal(10), Decimal(90)),
        ("150|350", Decimal(150), Decimal(350)),
        ("350", None, Decimal(350)),
        ("Balance = 12", None, Decimal(12)),
    ],
)
async def test_credits_left_is_parsed_tolerantly(
    body: str, used: Decimal | None, remaining: Decimal
) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/creditsLeft.aspx").mock(
            return_value=httpx.Response(200, text=body)
        )
        async with client() as smsmy:
            credits = await smsmy.get_credits()
    assert (credits.used, credits.remaining, credits.raw) == (used, remaining, body)
    assert form(route.calls[0]) == {"username": USERNAME, "password": PASSWORD}


async def test_credits_errors() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/creditsLeft.aspx")
        async with client() as smsmy:
            route.mock(return_value=httpx.Response(200, text="1702"))
            with pytest.raises(AuthenticationError):
                await smsmy.get_credits()
            route.mock(return_value=httpx.Response(200, text="<html>login</html>"))
            with pytest.raises(UnexpectedAnswerError, match="login"):
                await smsmy.get_credits()


async def test_transfer_credits() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/ITransferCredits.aspx")
        async with client() as smsmy:
            route.mock(return_value=httpx.Response(200, text="1707"))
            done = await smsmy.transfer_credits(
                "customer1", 100, path="ITransferCredits.aspx", seqno="t-1"
            )
            assert form(route.calls[0]) == {
                "username": USERNAME,
                "password": PASSWORD,
                "cust": "customer1",
                "credit": "100",
                "seqno": "t-1",
            }
            assert (done.customer, done.credits, done.seqno) == ("customer1", Decimal(100), "t-1")
            route.mock(side_effect=[httpx.ReadTimeout("t"), httpx.Response(200, text="1718")])
            again = await smsmy.transfer_credits("customer1", "2.5", path="ITransferCredits.aspx")
            assert again.credits == Decimal("2.5")
            for answer in ("1708", "1709"):
                route.mock(return_value=httpx.Response(200, text=answer))
                with pytest.raises(CreditTransferError):
                    await smsmy.transfer_credits("nobody", 1, path="ITransferCredits.aspx")
            with pytest.raises(ValidationError, match="path"):
                await smsmy.transfer_credits("c", 1, path="https://elsewhere.example/x")
            with pytest.raises(ValidationError, match="positive"):
                await smsmy.transfer_credits("c", 0, path="ITransferCredits.aspx")


async def test_plain_http_base_url_warns() -> None:
    with pytest.warns(PlainHttpWarning, match="plain http"):
        smsmy = SmsComMyClient(username="u", password="p")
    assert SMSCOMMY_BASE_URL.startswith("http://")
    await smsmy.aclose()
    for local in (
        "http://127.0.0.1:8080/websmsapi",
        "http://localhost:8080/websmsapi",
        "http://[::1]:80",
    ):
        await SmsComMyClient(username="u", password="p", base_url=local).aclose()  # no warning


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.send_sms("60123456789", "hi", seqno="x" * 21), "seqno"),
        (lambda s: s.send_sms("60123456789", "hi", seqno="has space"), "seqno"),
        (lambda s: s.send_binary("60123456789", "XYZ"), "payload"),
        (lambda s: s.send_binary("60123456789", "AB" * 141), "payload"),
        (lambda s: s.send_barcode("60123456789", "x", msgtype="fax"), "msgtype"),
        (lambda s: s.send_sms("60123456789", ""), "text"),
        (lambda s: s.send_sms("123", "hi"), "to"),
    ],
)
async def test_validation_before_sending(call: Any, field: str) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route(host="www.sms.com.my").mock(
            return_value=httpx.Response(200, text="1701:1143000001")
        )
        async with client() as smsmy:
            with pytest.raises(ValidationError) as caught:
                await call(smsmy)
    assert caught.value.field == field
    assert route.call_count == 0


@pytest.mark.parametrize("sender", ["", "My Company", "ABCDEFGHIJKL", "12345678901234"])
def test_sender_is_validated(sender: str) -> None:
    with pytest.raises(ValidationError, match="sender"):
        client(sender=sender)


@pytest.mark.parametrize("sender", ["6012345678901", "MyCompany01", "A"])
def test_valid_senders(sender: str) -> None:
    assert f"sender={sender!r}" in repr(client(sender=sender))


CUT_OR_UNDOCUMENTED = [
    "1701:11",  # 1701:1143000001 cut short
    "1701:",
    "1701",
    "1701:1143000001 1701:1143000002",
    "1701:1143000001\r\n1705",
    "1701:1143000001 OK",
    "1799",
    "1705:x",
]


@pytest.mark.parametrize("body", CUT_OR_UNDOCUMENTED)
async def test_a_cut_or_undocumented_answer_is_retried_with_the_same_seqno(body: str) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/ISendSMS.aspx").mock(
            side_effect=[httpx.Response(200, text=body), httpx.Response(200, text="1718")]
        )
        async with client() as smsmy:
            outcome = await smsmy.send_sms("60123456789", "Your OTP is 123456")
    assert route.call_count == 2
    assert len({form(call)["seqno"] for call in route.calls}) == 1
    assert outcome.status is OutcomeStatus.ACCEPTED
    assert outcome.message_id is None  # never the cut "11"


async def test_a_cut_msgid_every_time_is_unknown_never_accepted_with_it() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/ISendSMS.aspx").mock(
            return_value=httpx.Response(200, text="1701:11")
        )
        async with client(retry=RetryPolicy.no_wait(max_attempts=3)) as smsmy:
            with pytest.raises(OutcomeUnknownError) as caught:
                await smsmy.send_sms("60123456789", "hi", seqno="cut-1")
            report = await smsmy.send_sms_bulk([Sms(to="60123456789", text="hi")])
    assert caught.value.outcome is not None
    assert caught.value.outcome.message_id is None
    (outcome,) = report.outcomes
    assert outcome.status is OutcomeStatus.UNKNOWN
    assert outcome.message_id is None
    assert route.call_count == 6


async def test_a_whole_msgid_is_accepted() -> None:
    for body in ("1701:1143000001", " 1701:114300\r\n", "1701: C9122953-AB"):
        assert (await capture(lambda s: s.send_sms("60123456789", "hi"), answer=body))["seqno"]


async def test_a_seqno_used_twice_in_one_bulk_call_is_rejected_before_sending() -> None:
    """The gateway remembers seqnos: the second message's retry after a 502 would be answered
    1718 and read as accepted, though the gateway never recorded that message."""
    recorded: dict[str, str] = {}
    failed_once: set[str] = set()

    def gateway(request: httpx.Request) -> httpx.Response:
        fields = form(type("C", (), {"request": request}))
        if fields["message"] == "second" and "second" not in failed_once:
            failed_once.add("second")
            return httpx.Response(502, text="<html>bad gateway</html>")
        if fields["seqno"] in recorded:
            return httpx.Response(200, text="1718")
        recorded[fields["seqno"]] = fields["message"]
        return httpx.Response(200, text=f"1701:{1_143_000_000 + len(recorded)}")

    messages = [
        Sms(to="60123456781", text="first", seqno="order-17"),
        Sms(to="60123456782", text="second", seqno="order-17"),
        Sms(to="60123456783", text="third", seqno="order-18"),
    ]
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE}/ISendSMS.aspx").mock(side_effect=gateway)
        async with client(max_concurrency=1) as smsmy:
            report = await smsmy.send_sms_bulk(messages)
            streamed = [o async for o in smsmy.stream_sms_bulk(messages[:2])]
    first, second, third = report.outcomes
    assert (first.status, third.status) == (OutcomeStatus.ACCEPTED, OutcomeStatus.ACCEPTED)
    assert second.status is OutcomeStatus.REJECTED
    assert "seqno 'order-17' is already used" in (second.reason or "")
    assert recorded == {"order-17": "first", "order-18": "third"}
    assert [form(call)["message"] for call in route.calls[:2]] == ["first", "third"]
    # "first" again: 1718 to its seqno, the gateway has it; "second": refused by us
    assert [o.status for o in sorted(streamed, key=lambda o: o.index)] == [
        OutcomeStatus.ACCEPTED,
        OutcomeStatus.REJECTED,
    ]


async def test_against_the_sandbox_a_cut_answer_never_gives_a_wrong_message_id() -> None:
    """The sandbox's own ``Fault.TRUNCATED`` (processes, then cuts the answer in half:
    ``1701:1143000001`` arrives as ``1701:11``) on a random half of the requests, over a
    socket: every id we report is the one the gateway recorded for that recipient."""
    fake = FakeGateway()
    fake.chaos([Fault.TRUNCATED], rate=0.5, seed=7)
    messages = [Sms(to=f"6012{i:07d}", text=f"Your OTP is {i:06d}") for i in range(40)]
    async with serve(fake) as url, fake.smscommy_client(base_url=url) as smsmy:
        report = await smsmy.send_sms_bulk(messages)
    recorded = {m.to: m for m in fake.sent}
    assert len(fake.sent) == len(recorded) == 40  # each once: retries carried the same seqno
    assert fake.faults_applied["truncated"] >= 10
    for outcome in report.outcomes:
        assert outcome.seqno == recorded[outcome.to].seqno
        assert outcome.status in (OutcomeStatus.ACCEPTED, OutcomeStatus.UNKNOWN)
        assert outcome.message_id in (None, recorded[outcome.to].message_id), outcome
    with_id = [o for o in report.outcomes if o.message_id is not None]
    assert with_id  # the answers that came whole gave their ids
