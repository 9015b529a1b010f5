"""Acceptance (issue 13, points 1-8): the sandbox answers what the providers' own examples and
real PHP/curl clients send, over a real loopback socket, with hand-built raw requests (no SDK
client), and every answer is checked against the decision written in docs/contract.md."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from messaging_async.testing import (
    SANDBOX_APP_ID,
    SANDBOX_APP_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    SANDBOX_WABA_NUMBER,
    FakeGateway,
    serve,
)

CONTRACT = (Path(__file__).parent.parent / "docs" / "contract.md").read_text(encoding="utf-8")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}
U, P = SANDBOX_USERNAME, SANDBOX_PASSWORD
MY = f"username={U}&password={P}"  # sms.com.my credentials, url-encoded as curl -d sends them
ISMS = f"un={U}&pwd={P}&agreedterm=YES"

# The document's own template example (iSMS, "Send Template Message"), byte for byte: no
# ChannelType. A user fills in the blanks; the sandbox is given the same placeholders.
SEED_WABA_TEMPLATE = """{
"AppId": "your_app_id",
"AppSecret": "your_app_secret",
"un": "your_username",
"pwd": "your_password",
"agreedterm": "YES",
"Type": "template",
"TemplateCode": "your_template_code",
"TemplateParams": { "param1": "your value" },
"Language": "en",
"From": "your_waba_number",
"To": "recipient_number"
}"""
# The document's own 2D barcode URL (sms.com.my, section 6), as printed: its line wrapping
# put spaces inside it, which no client sends.
SEED_2D_URL = (
    "http://www.sms.com.my/websmsapi/ISendSMS2D.aspx?username=demoezsms&password=1234&"
    "message=My+Barcode+is+ %25barcode%25+&mobile=60123456789&sender=demoezsms&msgtype =mms"
).replace(" ", "")


def documented(section: str, answer: str) -> str:
    """``answer``, after checking docs/contract.md's ``section`` (``"B"``, ``"E4"``) gives it."""
    level = "##" if len(section) == 1 else "###"
    match = re.search(rf"^{level} {section}\.(.*?)(?=^#{{2,3}} |\Z)", CONTRACT, re.M | re.S)
    assert match is not None, f"docs/contract.md has no section {section}"
    assert answer in match.group(1), f"section {section} of docs/contract.md does not say {answer}"
    return answer.strip("`*")


@asynccontextmanager
async def sandbox(**settings: Any) -> AsyncIterator[tuple[FakeGateway, httpx.AsyncClient]]:
    fake = FakeGateway(**settings)
    async with serve(fake) as url, httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        yield fake, http


async def form(http: httpx.AsyncClient, path: str, body: str, query: str = "") -> str:
    url = f"{path}?{query}" if query else path
    return (await http.post(url, content=body.encode(), headers=FORM)).text


def multipart(fields: str, *, file: bool = False) -> tuple[bytes, dict[str, str]]:
    """``fields`` (``name=value&…``, unescaped) as curl -F, or PHP's CURLOPT_POSTFIELDS given
    an array, writes them; ``file`` adds a file part, which is not a field."""
    boundary = "------------------------d74496d66958873e"
    lines = []
    for name, _, value in (field.partition("=") for field in fields.split("&")):
        lines += [f"--{boundary}", f'Content-Disposition: form-data; name="{name}"', "", value]
    if file:
        lines += [
            f"--{boundary}",
            'Content-Disposition: form-data; name="un"; filename="un.txt"',
            "Content-Type: text/plain",
            "",
            "not a field",
        ]
    lines += [f"--{boundary}--", ""]
    content_type = f"multipart/form-data; boundary={boundary}"
    return "\r\n".join(lines).encode(), {"Content-Type": content_type}


def waba(**fields: Any) -> dict[str, Any]:
    return {
        "AppId": SANDBOX_APP_ID,
        "AppSecret": SANDBOX_APP_SECRET,
        "un": U,
        "pwd": P,
        "agreedterm": "YES",
        "Type": "template",
        "TemplateCode": "otp",
        "Language": "en",
        "From": SANDBOX_WABA_NUMBER,
        "To": "60123456789",
        **fields,
    }


# ---------------------------------------------------------------- 1, 2: WhatsApp
async def test_the_seeds_own_whatsapp_template_example_is_accepted() -> None:
    placeholders = {
        "app_id": "your_app_id",
        "app_secret": "your_app_secret",
        "username": "your_username",
        "password": "your_password",
        "templates": ["your_template_code"],
    }
    body = SEED_WABA_TEMPLATE.replace("your_waba_number", SANDBOX_WABA_NUMBER).replace(
        "recipient_number", "60123456789"
    )
    assert "ChannelType" not in body
    async with sandbox(**placeholders) as (fake, http):
        answer = (await http.post("/isms_send_waba.php", content=body, headers=JSON)).json()
    assert documented("B", '"statusCode": "OK"')
    assert answer["statusCode"] == "OK"
    assert answer["messageId"] == fake.sent[0].message_id
    assert (fake.sent[0].template, fake.sent[0].params) == (
        "your_template_code",
        {"param1": "your value"},
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"ChannelType": "WhatsApp"}, "OK"),
        ({"ChannelType": "sms"}, documented("E1", "`1008`")),
        ({"TemplateParams": []}, "OK"),
        ({"TemplateParams": ["2025-01-01"]}, documented("E2", "`1008`")),
        ({"TemplateParams": "x"}, "1008"),
    ],
)
async def test_channel_type_and_template_params_as_php_sends_them(
    fields: dict[str, Any], code: str
) -> None:
    async with sandbox() as (fake, http):
        body = json.dumps(waba(**fields))
        answer = (await http.post("/isms_send_waba.php", content=body, headers=JSON)).json()
    assert answer["statusCode"] == code
    if code == "OK" and "TemplateParams" in fields:
        assert fake.sent[0].params == {}  # E2: [] is "no params"


# ---------------------------------------------------------------- 3: 2D barcode
async def test_the_seeds_own_2d_barcode_url_is_accepted() -> None:
    async with sandbox(username="demoezsms", password="1234") as (fake, http):
        path = SEED_2D_URL.removeprefix("http://www.sms.com.my")
        answer = (await http.get(path)).text
    assert answer == f"1701:{fake.sent[0].message_id}"
    assert documented("C", "| 1701:[MsgId] | sent successfully |")
    assert (fake.sent[0].text, fake.sent[0].type) == ("My Barcode is %barcode% ", "MMS")


@pytest.mark.parametrize(
    ("msgtype", "expected"),
    [("eMs", "EMS"), ("NOKIA", "Nokia"), ("TextMsg", "textmsg"), ("TEXTLINK", "textlink")],
)
async def test_barcode_msgtype_in_any_case_and_sseqno(msgtype: str, expected: str) -> None:
    body = f"{MY}&message=Code+%25barcode%25&mobile=60123456789&MsgType={msgtype}&sseqno=b1"
    async with sandbox() as (fake, http):
        assert (await form(http, "/websmsapi/ISendSMS2D.aspx", body)).startswith("1701:")
        duplicate = await form(http, "/websmsapi/ISendSMS2D.aspx", body)
        unknown = await form(http, "/websmsapi/ISendSMS2D.aspx", body.replace(msgtype, "sms"))
    assert (fake.sent[0].type, fake.sent[0].seqno) == (expected, "b1")
    assert duplicate == "1718"  # E3: sseqno is the seqno on this page
    assert unknown == documented("E3", "`1706`")


# ---------------------------------------------------------------- 4: ASP.NET names
async def test_smscommy_names_in_any_case() -> None:
    body = f"Username={U}&Password={P}&Message=hi&Mobile=60123456789&Type=1"
    async with sandbox() as (fake, http):
        accepted = await form(http, "/websmsapi/ISendSMS.aspx", body)
        long_sender = await form(
            http, "/websmsapi/ISendSMS.aspx", body + "&Sender=ABCDEFGHIJKLMNOPQ"
        )
    assert accepted == f"1701:{fake.sent[0].message_id}"
    assert long_sender == documented("C", "1706")  # today's bug: Sender= was dropped, 1701
    assert len(fake.sent) == 1


async def test_smscommy_query_string_and_form_merge_as_aspnet_request_does() -> None:
    async with sandbox() as (fake, http):
        split = await form(
            http, "/websmsapi/ISendSMS.aspx", "message=hi&mobile=60123456789&type=1", MY
        )
        query_wins = await form(
            http,
            "/websmsapi/ISendSMS.aspx",
            f"{MY}&message=hi&mobile=60123456788&type=1&sender=FormSender",
            "Sender=QuerySender",
        )
        joined = await form(
            http,
            "/websmsapi/ISendSMSNoDR.aspx",
            f"{MY}&message=hi&type=1&mobile=60123456787&Mobile=60123456786",
        )
        two_senders = await form(
            http,
            "/websmsapi/ISendSMS.aspx",
            f"{MY}&message=hi&mobile=60123456785&type=1&sender=A&Sender=B",
        )
    assert split.startswith("1701:")
    assert query_wins.startswith("1701:")
    assert joined == "1701:"
    assert documented("E4", "**query string wins**")
    assert fake.sent[1].sender == "QuerySender"
    assert [m.to for m in fake.sent[2:]] == ["60123456787", "60123456786"]
    assert two_senders == documented("E4", "`1706`")  # "A,B", as NameValueCollection joins


async def test_isms_classic_reads_its_form_as_php_does() -> None:
    async with sandbox() as (fake, http):
        body_wins = await form(
            http, "/isms_send_all_id.php", f"{ISMS}&dstno=60123456789&type=1&msg=body", "msg=query"
        )
        re_cased = await form(
            http,
            "/isms_send_all_id.php",
            f"Un={U}&Pwd={P}&agreedterm=YES&dstno=60123456789&type=1&msg=x",
        )
    assert body_wins.startswith("2000 = SUCCESS:")
    assert fake.sent[0].text == "body"
    assert documented("E4", "**case-sensitive**")
    assert re_cased == "-1001"


# ---------------------------------------------------------------- 5: type as a number, multipart
@pytest.mark.parametrize(("value", "code"), [(1, 2000), (2, 2000), (True, -1005), (3, -1005)])
async def test_isms_json_type_as_a_number(value: Any, code: int) -> None:
    body = {
        "un": U,
        "pwd": P,
        "agreedterm": "YES",
        "type": value,
        "messages": [{"dstno": "60123456789", "msg": "hi"}],
    }
    async with sandbox() as (fake, http):
        answer = (
            await http.post("/isms_send_json.php", content=json.dumps(body), headers=JSON)
        ).json()
    if code == 2000:
        assert answer["results"][0]["code"] == code
        assert fake.sent[0].type == str(value)
    else:
        assert answer["code"] == code


# Every form endpoint, with the fields a success needs, written name=value&… for brevity.
MULTIPART_ENDPOINTS = [
    ("/isms_send_all_id.php", f"{ISMS}&dstno=60123456789&type=1&msg=hi", "2000 = SUCCESS:"),
    ("/websmsapi/ISendSMS.aspx", f"{MY}&message=hi&mobile=60123456789&type=1", "1701:"),
    (
        "/websmsapi/ISendSMSNoDR.aspx",
        f"{MY}&message=hi&mobile=60123456789,60123456788&type=1",
        "1701:",
    ),
    ("/websmsapi/ISendSMSUnicode.aspx", f"{MY}&message=你好&mobile=60123456789&type=3", "1701:"),
    (
        "/websmsapi/ISendSMS2D.aspx",
        f"{MY}&message=%barcode%&mobile=60123456789&msgtype=MMS",
        "1701:",
    ),
    ("/websmsapi/creditsLeft.aspx", MY, "Credits used"),
    ("/websmsapi/ITransferCredits.aspx", f"{MY}&cust=customer1&credit=5", "1707"),
]


@pytest.mark.parametrize(("path", "fields", "success"), MULTIPART_ENDPOINTS)
async def test_multipart_bodies_read_like_urlencoded_ones(
    path: str, fields: str, success: str
) -> None:
    body, headers = multipart(fields, file=True)
    async with sandbox() as (_, http):
        answer = (await http.post(path, content=body, headers=headers)).text
    assert answer.startswith(success), answer
    assert documented("E5", f"`{path.rsplit('/', 1)[-1]}`")


async def test_multipart_in_process_too() -> None:
    fake = FakeGateway()
    body, headers = multipart(MULTIPART_ENDPOINTS[1][1])
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        answer = await http.post(
            "https://www.sms.com.my/websmsapi/ISendSMS.aspx", content=body, headers=headers
        )
    assert answer.text == f"1701:{fake.sent[0].message_id}"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_real_curl_posting_multipart_is_accepted() -> None:
    async with sandbox() as (fake, http):
        url = f"{str(http.base_url).rstrip('/')}/websmsapi/ISendSMS.aspx"
        fields = [
            f"username={U}",
            f"password={P}",
            "Message=hi from curl",
            "mobile=60123456789",
            "type=1",
        ]
        command = [
            "curl",
            "-sS",
            "--max-time",
            "20",
            *(arg for f in fields for arg in ("-F", f)),
            url,
        ]
        done = await anyio.run_process(command)
    assert done.stdout.decode() == f"1701:{fake.sent[0].message_id}"
    assert fake.sent[0].text == "hi from curl"


# ---------------------------------------------------------------- 6: ISendSMSNoDR.aspx
async def test_no_dr_answers_1701_colon() -> None:
    async with sandbox() as (fake, http):
        answer = await form(
            http,
            "/websmsapi/ISendSMSNoDR.aspx",
            f"{MY}&message=hi&type=1&mobile=60123456789,60123456788",
        )
        bad = await form(
            http, "/websmsapi/ISendSMSNoDR.aspx", f"{MY}&message=hi&type=1&mobile=60123456789,123"
        )
    assert answer == documented("E6", "`1701:`")
    assert "1701:" in answer  # what clients in the wild test for
    assert len(fake.sent) == 2
    assert bad == "1705"


# ---------------------------------------------------------------- 7: numbers and senders
async def test_isms_numbers_with_plus_and_spaces_are_normalised() -> None:
    messages = [{"dstno": "+60 12-345 6789", "msg": "a"}, {"dstno": "+60 12", "msg": "b"}]
    body = {"un": U, "pwd": P, "agreedterm": "YES", "type": "1", "sendid": "", "messages": messages}
    async with sandbox() as (fake, http):
        json_answer = (
            await http.post("/isms_send_json.php", content=json.dumps(body), headers=JSON)
        ).json()
        # an unencoded "+" arrives as a space: stripped like one
        classic = await form(
            http, "/isms_send_all_id.php", f"{ISMS}&dstno=+60123456788&type=1&msg=c&sendid="
        )
        whatsapp = (
            await http.post(
                "/isms_send_waba.php",
                json=waba(To="+60 12 345 6787", From=f"+{SANDBOX_WABA_NUMBER}"),
            )
        ).json()
    assert [r["code"] for r in json_answer["results"]] == [2000, int(documented("E7", "`-1008`"))]
    assert classic.startswith("2000 = SUCCESS:")
    assert whatsapp["statusCode"] == "OK"
    assert [m.to for m in fake.sent] == ["60123456789", "60123456788", "60123456787"]
    assert [m.sender for m in fake.sent[:2]] == [None, None]  # sendid "" is no sender
    assert fake.sent[2].sender == SANDBOX_WABA_NUMBER


@pytest.mark.parametrize(
    "mobile", ["%2B60123456789", "+60123456789", "60+12+345+6789", "6012-3456789"]
)
async def test_smscommy_numbers_must_be_digits(mobile: str) -> None:
    async with sandbox() as (fake, http):
        answer = await form(
            http, "/websmsapi/ISendSMS.aspx", f"{MY}&message=hi&type=1&mobile={mobile}"
        )
    assert answer == documented("E7", "**`1705`**")
    assert not fake.sent


async def test_smscommy_empty_sender_is_no_sender() -> None:
    async with sandbox() as (fake, http):
        answer = await form(
            http, "/websmsapi/ISendSMS.aspx", f"{MY}&message=hi&type=1&mobile=60123456789&sender="
        )
    assert answer.startswith("1701:")
    assert documented("E7", "`sender=` is no sender")
    assert fake.sent[0].sender is None


# ---------------------------------------------------------------- 8: missing msg
async def test_missing_or_empty_msg_is_minus_1008() -> None:
    entries = [
        {"dstno": "60123456789"},
        {"dstno": "60123456788", "msg": ""},
        {"dstno": "60123456787", "msg": "x" * 901},
    ]
    body = {"un": U, "pwd": P, "agreedterm": "YES", "type": "1", "messages": entries}
    async with sandbox() as (fake, http):
        answer = (
            await http.post("/isms_send_json.php", content=json.dumps(body), headers=JSON)
        ).json()
        classic = await form(http, "/isms_send_all_id.php", f"{ISMS}&dstno=60123456789&type=1")
        classic_empty = await form(
            http, "/isms_send_all_id.php", f"{ISMS}&dstno=60123456789&type=1&msg="
        )
    missing = documented("E8", "`-1008`")
    assert [r["code"] for r in answer["results"]] == [int(missing), int(missing), -1006]
    assert classic == classic_empty == missing
    assert not fake.sent
