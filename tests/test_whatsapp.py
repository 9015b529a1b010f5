"""Acceptance for the iSMS WhatsApp Business API (CONTRACT B)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest
import respx

from messaging_async import (
    ISMS_WABA_BASE_URLS,
    AuthenticationError,
    GatewayError,
    InsufficientCreditsError,
    InvalidNumberError,
    IsmsClient,
    OutcomeStatus,
    OutcomeUnknownError,
    PlainHttpWarning,
    ReplyWindowClosedError,
    TemplateNotFoundError,
    ValidationError,
    WhatsAppFile,
    WhatsAppMessage,
    WhatsAppTemplate,
    WhatsAppText,
)

from .conftest import make_client
from .gateway import PASSWORD, USERNAME

APP_ID, APP_SECRET, WABA_NUMBER = "app-123", "AppS3cret-xyz", "60111111111"
FIRST, SECOND, THIRD = (f"{url}/isms_send_waba.php" for url in ISMS_WABA_BASE_URLS)
COMMON = {
    "AppId": APP_ID,
    "AppSecret": APP_SECRET,
    "un": USERNAME,
    "pwd": PASSWORD,
    "agreedterm": "YES",
    "ChannelType": "whatsapp",
}


def waba_client(**overrides: Any) -> Any:
    settings: dict[str, Any] = {
        "app_id": APP_ID,
        "app_secret": APP_SECRET,
        "waba_number": WABA_NUMBER,
    }
    settings.update(overrides)
    return make_client(**settings)


def ok(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(
        200,
        json={"requestId": "R-" + body["To"], "statusCode": "OK", "messageId": "M-" + body["To"]},
    )


def rules(request: httpx.Request) -> httpx.Response:
    """A gateway with a few failing codes, decided by the message itself."""
    body = json.loads(request.content)
    if body["To"].endswith("13"):
        return httpx.Response(200, json={"statusCode": "50500", "message": "Invalid destination"})
    if body["Type"] == "message" and body["To"].endswith("7"):
        return httpx.Response(
            200, json={"statusCode": 45010, "message": "Reply time limit exceeded"}
        )
    if body.get("TemplateCode") == "gone":
        return httpx.Response(200, json={"statusCode": "60006", "message": "Template not found"})
    return ok(request)


def bodies(route: Any) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


async def test_bodies_of_each_type_equal_the_contract() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(FIRST).mock(side_effect=ok)
        async with waba_client() as isms:
            template = await isms.send_whatsapp_template(
                "+60 12-345 6789", "order_shipped", language="ms", params={"param1": "MY-1042"}
            )
            await isms.send_whatsapp_text("60123456789", "Thanks, we got your photo")
            await isms.send_whatsapp_file(
                "60123456789", "https://cdn.example.com/inv.pdf", "invoice.pdf"
            )
    sent = bodies(route)
    head = {**COMMON}
    assert sent[0] == {
        **head,
        "Type": "template",
        "From": WABA_NUMBER,
        "To": "60123456789",
        "TemplateCode": "order_shipped",
        "Language": "ms",
        "TemplateParams": {"param1": "MY-1042"},
    }
    assert sent[1] == {
        **head,
        "Type": "message",
        "From": WABA_NUMBER,
        "To": "60123456789",
        "Content": "Thanks, we got your photo",
    }
    assert sent[2] == {
        **head,
        "Type": "file",
        "From": WABA_NUMBER,
        "To": "60123456789",
        "fileUrl": "https://cdn.example.com/inv.pdf",
        "fileName": "invoice.pdf",
    }
    assert list(sent[0])[:9] == [*COMMON, "Type", "From", "To"]
    assert route.calls[0].request.headers["content-type"] == "application/json"
    assert template.message_id == "M-60123456789"
    assert template.request_id == "R-60123456789"


async def test_template_params_become_strings() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(FIRST).mock(side_effect=ok)
        async with waba_client() as isms:
            await isms.send_whatsapp_template(
                "60123456789",
                "reminder",
                params=[
                    "A-1",
                    42,
                    Decimal("9.90"),
                    2.5,
                    date(2025, 1, 2),
                    datetime(2025, 1, 1, 10, 0),
                ],
            )
            await isms.send_whatsapp_template("60123456789", "plain")
    assert bodies(route)[0]["TemplateParams"] == {
        "param1": "A-1",
        "param2": "42",
        "param3": "9.90",
        "param4": "2.5",
        "param5": "2025-01-02",
        "param6": "2025-01-01 10:00:00",
    }
    assert bodies(route)[1]["TemplateParams"] == {}


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"param1": None}, "is None"),
        ([True], "is True"),
        (["ok", ["nested"]], "is a list"),
        ([""], "is empty"),
        ("just a string", "mapping or a sequence"),
        ([float("nan")], "finite"),
        ({1: "x"}, "names must be"),
    ],
)
async def test_bad_template_params_are_refused_before_sending(params: Any, match: str) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(FIRST).mock(side_effect=ok)
        async with waba_client() as isms:
            with pytest.raises(ValidationError, match=match):
                await isms.send_whatsapp_template("60123456789", "t", params=params)
    assert route.call_count == 0


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.send_whatsapp_text("60123456789", "  "), "text"),
        (lambda c: c.send_whatsapp_text("60123456789", "x" * 4097), "text"),
        (lambda c: c.send_whatsapp_file("60123456789", "/inv.pdf", "a.pdf"), "url"),
        (lambda c: c.send_whatsapp_file("60123456789", "ftp://h/inv.pdf", "a.pdf"), "url"),
        (lambda c: c.send_whatsapp_file("60123456789", "https://u:p@h/inv.pdf", "a.pdf"), "url"),
        (lambda c: c.send_whatsapp_file("60123456789", "https://h/inv.pdf", ""), "file_name"),
        (lambda c: c.send_whatsapp_template("60123456789", ""), "template_code"),
        (lambda c: c.send_whatsapp_template("60123456789", "t", language="english!"), "language"),
        (lambda c: c.send_whatsapp_text("012", "hi"), "to"),
    ],
)
async def test_validation_before_any_network_call(call: Any, field: str) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(FIRST).mock(side_effect=ok)
        async with waba_client() as isms:
            with pytest.raises(ValidationError) as caught:
                await call(isms)
    assert caught.value.field == field
    assert route.call_count == 0


async def test_missing_whatsapp_configuration_is_named() -> None:
    async with make_client(app_id=APP_ID) as isms:
        with pytest.raises(ValidationError, match="app_secret, waba_number"):
            await isms.send_whatsapp_text("60123456789", "hi")
        with pytest.raises(ValidationError, match="app_secret, waba_number"):
            await isms.send_whatsapp_bulk([])


async def test_plain_http_file_url_warns_but_sends() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(FIRST).mock(side_effect=ok)
        async with waba_client() as isms:
            with pytest.warns(PlainHttpWarning, match="plain http"):
                await isms.send_whatsapp_file(
                    "60123456789", "http://cdn.example.com/a.pdf", "a.pdf"
                )
    assert route.call_count == 1


@pytest.mark.parametrize("status_code", ["OK", "ok", "0", 0])
async def test_success_status_codes(status_code: object) -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(FIRST).mock(
            return_value=httpx.Response(200, json={"statusCode": status_code, "messageId": 7})
        )
        async with waba_client() as isms:
            outcome = await isms.send_whatsapp_text("60123456789", "hi")
    assert outcome.ok
    assert outcome.message_id == "7"


@pytest.mark.parametrize(
    ("status_code", "error"),
    [
        ("1001", AuthenticationError),
        ("1004", InsufficientCreditsError),
        (70502, InsufficientCreditsError),
        ("50500", InvalidNumberError),
        ("45010", ReplyWindowClosedError),
        ("60006", TemplateNotFoundError),
        ("99999", GatewayError),
    ],
)
async def test_documented_codes_raise_their_errors(
    status_code: object, error: type[Exception]
) -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(FIRST).mock(
            return_value=httpx.Response(200, json={"statusCode": status_code, "message": "m"})
        )
        async with waba_client() as isms:
            with pytest.raises(error) as caught:
                await isms.send_whatsapp_text("60123456789", "hi")
    assert type(caught.value) is error
    assert isinstance(caught.value, GatewayError)
    assert caught.value.outcome is not None
    assert caught.value.outcome.status is OutcomeStatus.REJECTED


def mixed(count: int) -> list[WhatsAppMessage]:
    messages: list[WhatsAppMessage] = []
    for i in range(count):
        to = f"6012{i:07d}"
        if i % 3 == 0:
            messages.append(
                WhatsAppTemplate(
                    to=to, template_code="gone" if i == 300 else "hello", params=[str(i)], ref=i
                )
            )
        elif i % 3 == 1:
            messages.append(WhatsAppText(to=to, text=f"text {i}", ref=i))
        else:
            messages.append(
                WhatsAppFile(
                    to=to, url=f"https://cdn.example.com/{i}.pdf", file_name=f"{i}.pdf", ref=i
                )
            )
    return messages


async def test_a_bulk_run_of_1000_mixed_messages() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(FIRST).mock(side_effect=rules)
        async with waba_client() as isms:
            report = await isms.send_whatsapp_bulk(mixed(1_000))
    assert [o.index for o in report.outcomes] == list(range(1_000))
    assert [o.ref for o in report.outcomes] == list(range(1_000))
    for i, outcome in enumerate(report.outcomes):
        if f"{i:07d}".endswith("13"):
            assert isinstance(outcome.error, InvalidNumberError)
        elif i % 3 == 1 and i % 10 == 7:
            assert outcome.status is OutcomeStatus.REJECTED
            assert isinstance(outcome.error, ReplyWindowClosedError)
            assert "24-hour" in (outcome.reason or "")
        elif i == 300:
            assert isinstance(outcome.error, TemplateNotFoundError)
        else:
            assert outcome.status is OutcomeStatus.ACCEPTED, (i, outcome)
            assert outcome.message_id == f"M-6012{i:07d}"
    assert route.call_count == 1_000
    assert report.stopped_by is None


async def test_70502_at_message_k_stops_the_messages_not_yet_sent() -> None:
    calls = 0

    def waba_credits_run_out(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls >= 120:
            return httpx.Response(
                200, json={"statusCode": "70502", "message": "Insufficient WABA credits"}
            )
        return ok(request)

    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(FIRST).mock(side_effect=waba_credits_run_out)
        async with waba_client(max_whatsapp_concurrency=1) as isms:
            report = await isms.send_whatsapp_bulk(mixed(1_000))
    assert route.call_count == 120
    assert report.counts[OutcomeStatus.ACCEPTED] == 119
    assert report.outcomes[119].code == 70502
    assert [o.status for o in report.outcomes[120:]] == [OutcomeStatus.NOT_SENT] * 880
    assert isinstance(report.stopped_by, InsufficientCreditsError)


async def test_a_missing_template_stops_only_that_template() -> None:
    messages: list[WhatsAppMessage] = [
        WhatsAppTemplate(to="60120000001", template_code="gone"),
        WhatsAppTemplate(to="60120000002", template_code="hello"),
        WhatsAppTemplate(to="60120000003", template_code="gone"),
        WhatsAppText(to="60120000004", text="hi"),
    ]
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(FIRST).mock(side_effect=rules)
        async with waba_client(max_whatsapp_concurrency=1) as isms:
            report = await isms.send_whatsapp_bulk(messages)
    assert [o.status for o in report.outcomes] == [
        OutcomeStatus.REJECTED,
        OutcomeStatus.ACCEPTED,
        OutcomeStatus.NOT_SENT,
        OutcomeStatus.ACCEPTED,
    ]
    assert "60006" in (report.outcomes[2].reason or "")
    assert route.call_count == 3
    assert report.stopped_by is None


async def test_first_waba_host_refusing_goes_to_the_second() -> None:
    with respx.mock(assert_all_called=False) as mock:
        first = mock.post(FIRST).mock(side_effect=httpx.ConnectError("refused"))
        second = mock.post(SECOND).mock(side_effect=ok)
        async with waba_client() as isms:
            report = await isms.send_whatsapp_bulk(mixed(60))
    assert report.all_accepted
    assert second.call_count == 60
    assert first.call_count <= 32  # only requests started before the first failure


async def test_read_timeout_is_unknown_and_never_resent() -> None:
    with respx.mock(assert_all_called=False) as mock:
        routes = [
            mock.post(url).mock(side_effect=httpx.ReadTimeout("slow"))
            for url in (FIRST, SECOND, THIRD)
        ]
        async with waba_client() as isms:
            with pytest.raises(OutcomeUnknownError):
                await isms.send_whatsapp_template("60123456789", "otp", params=["123456"])
            report = await isms.send_whatsapp_bulk(mixed(10))
    assert {o.status for o in report.outcomes} == {OutcomeStatus.UNKNOWN}
    assert sum(route.call_count for route in routes) == 11


async def test_unreadable_answers() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(FIRST)
        async with waba_client() as isms:
            route.mock(return_value=httpx.Response(200, text="<html>oops</html>"))
            report = await isms.send_whatsapp_bulk([WhatsAppText(to="60123456789", text="x")])
            assert report.outcomes[0].status is OutcomeStatus.UNKNOWN
            route.mock(return_value=httpx.Response(403, text="Forbidden"))
            report = await isms.send_whatsapp_bulk([WhatsAppText(to="60123456789", text="x")])
            assert report.outcomes[0].status is OutcomeStatus.REJECTED
            assert "HTTP 403" in (report.outcomes[0].reason or "")


async def test_a_non_whatsapp_item_is_rejected_in_bulk() -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(FIRST).mock(side_effect=ok)
        async with waba_client() as isms:
            items: list[Any] = [WhatsAppText(to="60123456789", text="x"), "hello"]
            report = await isms.send_whatsapp_bulk(items)
            streamed = [o async for o in isms.stream_whatsapp_bulk(mixed(40))]
    assert [o.status for o in report.outcomes] == [OutcomeStatus.ACCEPTED, OutcomeStatus.REJECTED]
    assert len(streamed) == 40


async def test_a_whatsapp_stream_closes_where_its_async_with_block_ends() -> None:
    """``stream_whatsapp_bulk`` returns a ``BulkStream`` (typed so: mypy checks this
    ``async with``), and leaving the block stops the sending."""
    texts = [WhatsAppText(to=f"6012{i:07d}", text=f"text {i}") for i in range(200)]
    seen = 0
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(FIRST).mock(side_effect=ok)
        isms: IsmsClient = waba_client(max_concurrency=1)
        async with isms:
            async with isms.stream_whatsapp_bulk(texts) as stream:
                async for outcome in stream:
                    assert outcome.status is OutcomeStatus.ACCEPTED
                    seen += 1
                    if seen == 3:
                        break
            sent_at_exit = route.call_count
            await anyio.sleep(0.05)
    assert seen == 3
    assert route.call_count == sent_at_exit < 200
