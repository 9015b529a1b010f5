"""The sandbox's own tests: every endpoint, code and fault, driven with raw httpx (not the
SDK), so they check the fake's reading of the contract on its own."""

from __future__ import annotations

import ast
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from messaging_async import DeliveryStatus, WebhookReceiver
from messaging_async.testing import (
    SANDBOX_APP_ID,
    SANDBOX_APP_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    SANDBOX_WABA_NUMBER,
    FakeGateway,
    Fault,
    WebhookTarget,
    serve,
)

ISMS = "https://www.isms.com.my"
SMSMY = "https://www.sms.com.my/websmsapi"
AUTH = {"un": SANDBOX_USERNAME, "pwd": SANDBOX_PASSWORD}
MY_AUTH = {"username": SANDBOX_USERNAME, "password": SANDBOX_PASSWORD}


@pytest.fixture
async def http(fake_gateway: FakeGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=fake_gateway.transport(), timeout=0.5) as client:
        yield client


def sms(messages: list[dict[str, str]], **overrides: Any) -> dict[str, Any]:
    return {
        **AUTH,
        "type": "1",
        "agreedterm": "YES",
        "sendid": "MyCo",
        "messages": messages,
        **overrides,
    }


async def json_send(http: httpx.AsyncClient, body: Any) -> Any:
    return (await http.post(f"{ISMS}/isms_send_json.php", content=json.dumps(body))).json()


# ---------------------------------------------------------------- iSMS SMS
@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"pwd": "wrong"}, -1001),
        ({"agreedterm": "NO"}, -1013),
        ({"type": "3"}, -1005),
        ({"sendid": "Too Long Sender"}, -1008),
        ({"messages": []}, -1008),
        ({"messages": [{"dstno": "60123456789", "msg": "x"}] * 51}, -1010),
    ],
)
async def test_json_api_whole_request_errors(
    http: httpx.AsyncClient, overrides: dict[str, Any], code: int
) -> None:
    answer = await json_send(http, {**sms([{"dstno": "60123456789", "msg": "hi"}]), **overrides})
    assert answer["status"] == "error"
    assert answer["code"] == code
    assert answer["message"].startswith(str(code))


async def test_json_api_invalid_json(http: httpx.AsyncClient) -> None:
    answer = await http.post(f"{ISMS}/isms_send_json.php", content=b"{not json")
    assert answer.json()["code"] == -1014


async def test_json_api_per_recipient_results(
    http: httpx.AsyncClient, fake_gateway: FakeGateway
) -> None:
    messages = [
        {"dstno": "60123456789", "msg": "Hello"},
        {"dstno": "+60123", "msg": "bad number"},
        {"dstno": "60123456788", "msg": "x" * 901},
        {"dstno": "60123456787", "msg": "你好 in type 1"},
        {"dstno": "60123456786", "msg": ""},
    ]
    answer = await json_send(http, sms(messages))
    assert [r["code"] for r in answer["results"]] == [2000, -1008, -1006, -1009, -1008]
    assert answer["status"] == "partial"
    assert answer["total_failed"] == 4
    assert answer["total_credits_used"] == 1
    assert [m.to for m in fake_gateway.sent] == ["60123456789"]
    assert fake_gateway.sent[0].message_id == answer["results"][0]["sms_id"]
    assert fake_gateway.sent[0].sender == "MyCo"


async def test_json_api_credits_run_out(http: httpx.AsyncClient) -> None:
    fake = FakeGateway(isms_credits=2)
    async with httpx.AsyncClient(transport=fake.transport()) as client:
        answer = await json_send(
            client, sms([{"dstno": f"6012345678{i}", "msg": "x"} for i in range(3)])
        )
        assert [r["code"] for r in answer["results"]] == [2000, 2000, -1004]
        assert (await json_send(client, sms([{"dstno": "60123456789", "msg": "x"}])))[
            "code"
        ] == -1004
    assert fake.isms_credits == 0


async def test_classic_api(http: httpx.AsyncClient, fake_gateway: FakeGateway) -> None:
    form = {
        **AUTH,
        "dstno": "60123456789;60123456788",
        "msg": "Sale",
        "type": "1",
        "agreedterm": "YES",
    }
    answer = await http.post(f"{ISMS}/isms_send_all_id.php", data=form)
    assert answer.text.startswith("2000 = SUCCESS:")
    assert len(fake_gateway.sent) == 2
    assert (
        await http.post(f"{ISMS}/isms_send_all_id.php", data={**form, "pwd": "x"})
    ).text == "-1001"
    assert (
        await http.get(f"{ISMS}/isms_send_all_id.php", params={**form, "dstno": "1"})
    ).text == "-1008"


async def test_balance(http: httpx.AsyncClient) -> None:
    assert (await http.post(f"{ISMS}/isms_balance_json.php", json=AUTH)).json()[
        "balance"
    ] == "1000000.00"
    assert (await http.post(f"{ISMS}/isms_balance_json.php", json={**AUTH, "pwd": "x"})).json()[
        "code"
    ] == -1001
    assert (await http.get(f"{ISMS}/isms_balance_json.php")).status_code == 405


# ---------------------------------------------------------------- WhatsApp
def waba(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "AppId": SANDBOX_APP_ID,
        "AppSecret": SANDBOX_APP_SECRET,
        **AUTH,
        "agreedterm": "YES",
        "ChannelType": "whatsapp",
        "Type": kind,
        "From": SANDBOX_WABA_NUMBER,
        "To": "60123456789",
        **fields,
    }


TEMPLATE = {"TemplateCode": "otp", "Language": "en", "TemplateParams": {"param1": "123456"}}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (waba("template", **TEMPLATE, AppSecret="x"), "1001"),
        (waba("template", TemplateCode="otp"), "1008"),
        (waba("template", **TEMPLATE, From="60100000000"), "1008"),
        (waba("template", **TEMPLATE, To="123"), "50500"),
        (waba("template", **{**TEMPLATE, "TemplateCode": "nope"}), "60006"),
        (waba("message", Content="hi"), "45010"),
        (waba("file", fileUrl="https://x/a.pdf", fileName="a.pdf"), "45010"),
    ],
)
async def test_waba_codes(http: httpx.AsyncClient, body: dict[str, Any], code: str) -> None:
    answer = (await http.post(f"{ISMS}/isms_send_waba.php", json=body)).json()
    assert answer["statusCode"] == code


async def test_waba_success_window_and_credits(
    http: httpx.AsyncClient, fake_gateway: FakeGateway
) -> None:
    answer = (
        await http.post(f"{ISMS}/isms_send_waba.php", json=waba("template", **TEMPLATE))
    ).json()
    assert answer["statusCode"] == "OK"
    assert answer["messageId"] == fake_gateway.sent[0].message_id
    assert fake_gateway.sent[0].params == {"param1": "123456"}
    await fake_gateway.receive_whatsapp("60123456789", "hello")
    text = (
        await http.post(f"{ISMS}/isms_send_waba.php", json=waba("message", Content="hi"))
    ).json()
    assert text["statusCode"] == "OK"
    fake_gateway.waba_credits = fake_gateway.waba_credits * 0
    empty = (
        await http.post(f"{ISMS}/isms_send_waba.php", json=waba("template", **TEMPLATE))
    ).json()
    assert empty["statusCode"] == "70502"


async def test_the_window_closes_after_24_hours() -> None:
    now = [1_000_000.0]
    fake = FakeGateway(clock=lambda: now[0])
    await fake.receive_whatsapp("60123456789", "hi")
    assert fake.window_open("60123456789")
    now[0] += 24 * 3600 + 1
    assert not fake.window_open("60123456789")


# ---------------------------------------------------------------- sms.com.my
async def smsmy(http: httpx.AsyncClient, endpoint: str, **fields: str) -> str:
    return (
        await http.post(f"{SMSMY}/{endpoint}", data={**MY_AUTH, "mobile": "60123456789", **fields})
    ).text


@pytest.mark.parametrize(
    ("endpoint", "fields", "text"),
    [
        ("ISendSMS.aspx", {"message": "Hello", "type": "1"}, "Hello"),
        ("ISendSMS.aspx", {"message": "Flash", "type": "2"}, "Flash"),
        ("ISendSMS.aspx", {"message": "004100420043", "type": "3"}, "ABC"),
        ("ISendSMS.aspx", {"message": "D83DDE00", "type": "4"}, "😀"),
        ("ISendSMS.aspx", {"message": "0B05040B8423F0", "type": "5"}, "0B05040B8423F0"),
        ("ISendSMS.aspx", {"message": "CAFE", "type": "6"}, "CAFE"),
        ("ISendSMSUnicode.aspx", {"message": "你好", "type": "3"}, "你好"),
        ("ISendSMS2D.aspx", {"message": "Code %barcode%", "msgtype": "MMS"}, "Code %barcode%"),
    ],
)
async def test_smscommy_endpoints(
    http: httpx.AsyncClient,
    fake_gateway: FakeGateway,
    endpoint: str,
    fields: dict[str, str],
    text: str,
) -> None:
    answer = await smsmy(http, endpoint, **fields)
    assert answer == f"1701:{fake_gateway.sent[0].message_id}"
    assert fake_gateway.sent[0].text == text
    assert fake_gateway.sent[0].endpoint == endpoint


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"password": "x", "message": "hi", "type": "1"}, "1702"),
        ({"mobile": "12", "message": "hi", "type": "1"}, "1705"),
        ({"message": "", "type": "1"}, "1706"),
        ({"message": "hi", "type": "1", "sender": "Too Long Sender"}, "1706"),
        ({"message": "你好", "type": "1"}, "1706"),
        ({"message": "ZZZZ", "type": "3"}, "1706"),
        ({"message": "D83D", "type": "3"}, "1706"),
        ({"message": "hi", "type": "9"}, "1706"),
    ],
)
async def test_smscommy_codes(http: httpx.AsyncClient, fields: dict[str, str], code: str) -> None:
    assert await smsmy(http, "ISendSMS.aspx", **fields) == code


async def test_smscommy_seqno_credits_no_dr_and_transfer(
    http: httpx.AsyncClient, fake_gateway: FakeGateway
) -> None:
    assert (await smsmy(http, "ISendSMS.aspx", message="a", type="1", seqno="s1")).startswith(
        "1701:"
    )
    assert await smsmy(http, "ISendSMS.aspx", message="a", type="1", seqno="s1") == "1718"
    assert (
        await smsmy(
            http, "ISendSMSNoDR.aspx", message="b", type="1", mobile="60123456789,60123456788"
        )
        == "1701:"
    )
    assert len(fake_gateway.sent) == 3
    credits = (await http.post(f"{SMSMY}/creditsLeft.aspx", data=MY_AUTH)).text
    assert credits == "Credits used: 3, Credits left: 999997"
    transfer = {**MY_AUTH, "cust": "customer1", "credit": "10", "seqno": "t1"}
    assert (await http.post(f"{SMSMY}/ITransferCredits.aspx", data=transfer)).text == "1707"
    assert (await http.post(f"{SMSMY}/ITransferCredits.aspx", data=transfer)).text == "1718"
    assert (
        await http.post(
            f"{SMSMY}/ITransferCredits.aspx", data={**transfer, "cust": "x", "seqno": "t2"}
        )
    ).text == "1708"
    assert (
        await http.post(
            f"{SMSMY}/ITransferCredits.aspx", data={**transfer, "credit": "-1", "seqno": "t3"}
        )
    ).text == "1709"
    fake_gateway.smscommy_credits = fake_gateway.smscommy_credits * 0
    assert await smsmy(http, "ISendSMS.aspx", message="a", type="1") == "1704"


# ---------------------------------------------------------------- faults
@pytest.mark.parametrize(
    ("fault", "error", "processed"),
    [
        (Fault.REFUSE, httpx.ConnectError, False),
        (Fault.HANG, httpx.ReadTimeout, True),
        (Fault.RESET, httpx.ReadError, True),
    ],
)
async def test_faults_that_raise(
    http: httpx.AsyncClient,
    fake_gateway: FakeGateway,
    fault: Fault,
    error: type[Exception],
    processed: bool,
) -> None:
    fake_gateway.inject(fault, endpoint="ISendSMS.aspx")
    with pytest.raises(error):
        await smsmy(http, "ISendSMS.aspx", message="x", type="1")
    assert len(fake_gateway.sent) == int(processed)
    assert (await smsmy(http, "ISendSMS.aspx", message="y", type="1")).startswith(
        "1701:"
    )  # once only


@pytest.mark.parametrize(
    ("fault", "status", "check", "processed"),
    [
        (Fault.SERVER_ERROR, 502, lambda body: "<html>" in body, False),
        (Fault.NOT_JSON, 200, lambda body: "unavailable" in body, False),
        (
            Fault.TRUNCATED,
            200,
            lambda body: body.startswith('{"status"') and not body.endswith("}"),
            True,
        ),
        (Fault.SLOW, 200, lambda body: json.loads(body)["results"][0]["code"] == 2000, True),
        (Fault.CODE, 200, lambda body: json.loads(body)["code"] == -1003, False),
    ],
)
async def test_faults_that_answer(
    http: httpx.AsyncClient,
    fake_gateway: FakeGateway,
    fault: Fault,
    status: int,
    check: Any,
    processed: bool,
) -> None:
    fake_gateway.inject(fault, endpoint="isms_send_json.php", code=-1003, delay=0.01, times=2)
    for _ in range(2):
        answer = await http.post(
            f"{ISMS}/isms_send_json.php", json=sms([{"dstno": "60123456789", "msg": "x"}])
        )
        assert answer.status_code == status
        assert check(answer.text)
    assert len(fake_gateway.sent) == 2 * int(processed)
    normal = await json_send(http, sms([{"dstno": "60123456789", "msg": "x"}]))
    assert normal["results"][0]["code"] == 2000


async def test_faults_match_host_and_endpoint(
    http: httpx.AsyncClient, fake_gateway: FakeGateway
) -> None:
    fake_gateway.inject(Fault.REFUSE, host="www.isms.com.my", times=None)
    with pytest.raises(httpx.ConnectError):
        await http.post(f"{ISMS}/isms_balance_json.php", json=AUTH)
    assert (
        await http.post("https://ww3.isms.com.my/isms_balance_json.php", json=AUTH)
    ).status_code == 200
    fake_gateway.clear_faults()
    assert (await http.post(f"{ISMS}/isms_balance_json.php", json=AUTH)).status_code == 200
    with pytest.raises(ValueError, match="code="):
        fake_gateway.inject(Fault.CODE)


async def test_faults_over_a_real_socket() -> None:
    fake = FakeGateway()
    async with serve(fake) as url, httpx.AsyncClient(timeout=2.0) as http:
        body = sms([{"dstno": "60123456789", "msg": "x"}])
        fake.inject(Fault.RESET, endpoint="isms_send_json.php")
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(f"{url}/isms_send_json.php", json=body)
        fake.inject(Fault.SERVER_ERROR, endpoint="isms_send_json.php")
        assert (await http.post(f"{url}/isms_send_json.php", json=body)).status_code == 502
        fake.inject(Fault.TRUNCATED, endpoint="isms_send_json.php")
        with pytest.raises(json.JSONDecodeError):
            (await http.post(f"{url}/isms_send_json.php", json=body)).json()
        answer = await http.post(f"{url}/isms_send_json.php", json=body)
    assert answer.json()["results"][0]["code"] == 2000
    assert len(fake.sent) == 3  # reset and truncated had processed it


# ---------------------------------------------------------------- callbacks
async def test_callbacks_reach_a_receiver_in_the_gateways_formats() -> None:
    events: list[Any] = []

    async def record(event: Any) -> None:
        events.append(event)

    token = "callback-token-0123456789"
    receiver = WebhookReceiver(secret=token, on_delivery=record, on_whatsapp=record)
    outcomes = {"60123456788": DeliveryStatus.FAILED, "60123456787": DeliveryStatus.EXPIRED}
    fake = FakeGateway(webhook=WebhookTarget(receiver, token=token), delivery_outcomes=outcomes)
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        await json_send(
            http, sms([{"dstno": n, "msg": "x"} for n in ("60123456789", "60123456788")])
        )
        await smsmy(http, "ISendSMS.aspx", message="y", type="1", mobile="60123456787")
        await smsmy(
            http, "ISendSMSNoDR.aspx", message="z", type="1", mobile="60123456786"
        )  # no report
    assert await fake.deliver_reports() == 3
    assert await fake.deliver_reports() == 0
    await fake.receive_whatsapp("60123456789", "hi there")
    statuses = {(e.gateway, e.status) for e in events[:3]}
    assert statuses == {
        ("isms", DeliveryStatus.DELIVERED),
        ("isms", DeliveryStatus.FAILED),
        ("smscommy", DeliveryStatus.EXPIRED),
    }
    assert events[3].text == "hi there"
    assert fake.webhook is not None
    assert fake.webhook.answers == [200, 200, 200, 200]


def test_callbacks_only_go_to_loopback() -> None:
    with pytest.raises(ValueError, match="only calls back"):
        WebhookTarget("http://192.168.1.5/hooks", token="t")
    WebhookTarget("http://127.0.0.1:9/hooks", token="t")
    WebhookTarget("http://localhost:9/hooks", token="t")


def test_the_sandbox_never_imports_the_sdks_wire_modules() -> None:
    folder = Path(__file__).resolve().parent.parent / "messaging_async" / "testing"
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += (
                [alias.name for alias in getattr(node, "names", [])]
                if isinstance(node, ast.Import | ast.ImportFrom)
                else []
            )
            assert not any(
                part in ("_wire", "_waba") for name in names for part in name.split(".")
            ), path
