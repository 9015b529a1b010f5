"""Acceptance: no password or message text in logs (every logger at DEBUG), reprs or errors."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable, Iterator
from urllib.parse import quote_plus

import httpx
import pytest
import respx

from messaging_async import (
    MessagingError,
    RetryPolicy,
    Sms,
    SmsComMyClient,
    WhatsAppTemplate,
    WhatsAppText,
)

from .conftest import make_client
from .gateway import PASSWORD, TestGateway, refused_base_url, serve_on_loopback

APP_SECRET = "AppS3cret-never-logged"
TEXTS = [
    "Your OTP is 771203",
    'Kod "rahsia" anda: 55\\19',
    "验证码 904417 请勿泄露",
    "Reset link token=Zx9-Qq_81&x=1 👍",
]


@pytest.fixture
def debug_everywhere(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    ours_and_theirs = ["", "httpx", "httpcore", "aiohttp", "messaging_async"]
    names = [*ours_and_theirs, *logging.root.manager.loggerDict]
    previous = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    yield caplog
    for name, level in previous.items():
        logging.getLogger(name).setLevel(level)


def echo(request: httpx.Request) -> httpx.Response:
    """A broken gateway that echoes the request body back (with the password in it)."""
    return httpx.Response(200, text="<pre>" + request.content.decode() + "</pre>")


async def test_no_secret_reaches_logs_reprs_or_errors(
    debug_everywhere: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    messages = [Sms(to=f"6012000000{i}", text=text) for i, text in enumerate(TEXTS)]

    # Real sockets, so httpx's, httpcore's and aiohttp's own DEBUG logging runs: success,
    # then a dead first host (failover), then an authentication failure.
    gateway = TestGateway()
    with serve_on_loopback(gateway) as url:
        for backend in ("httpx", "aiohttp"):
            hosts = [refused_base_url(), url]
            async with make_client(sms_base_urls=hosts, http_backend=backend) as client:
                seen.append(repr(client))
                report = await client.send_sms_bulk(messages)
                seen += [repr(report), *map(repr, report.outcomes), repr(messages)]
                seen.append(repr(await client.send_sms(messages[0].to, TEXTS[0])))
                assert report.all_accepted
            wrong = "wrong-" + PASSWORD
            async with make_client(sms_base_urls=[url], password=wrong, http_backend=backend) as c:
                seen.append(repr(await c.send_sms_bulk(messages)))
                for text in TEXTS:
                    seen += _failure(await _raises(c.send_sms("60120000001", text)))

    # Answers that go wrong in every other way, including one that echoes the request.
    with respx.mock(assert_all_called=False) as mock:
        json_route = mock.post(path="/isms_send_json.php")
        classic_route = mock.post(path="/isms_send_all_id.php")
        async with make_client(retry=RetryPolicy.no_wait(max_attempts=2)) as client:
            for effect in (echo, httpx.ReadTimeout("t"), httpx.ConnectError("c")):
                json_route.mock(side_effect=effect)
                classic_route.mock(side_effect=effect)
                seen.append(repr(await client.send_sms_bulk(messages)))
                seen += [o.reason or "" for o in (await client.send_sms_bulk(messages)).outcomes]
                for text in TEXTS:
                    seen += _failure(await _raises(client.send_sms("60120000001", text)))
                    classic = await client.send_sms_classic(["60120000001"], text)
                    seen += [o.reason or "" for o in classic.outcomes]
            for text in TEXTS:  # invalid input: the error must not quote the text
                seen += _failure(await _raises(client.send_sms("0123", text)))
                seen += _failure(await _raises(client.send_sms("60120000001", text * 300)))

    seen += await _whatsapp_failures()
    seen += await _smscommy_failures()

    seen += [record.getMessage() for record in debug_everywhere.records]
    seen += [debug_everywhere.text]
    assert any("httpcore" in record.name for record in debug_everywhere.records), "no DEBUG ran"
    everything = "\n".join(seen)
    assert PASSWORD not in everything
    assert APP_SECRET not in everything
    for text in TEXTS:
        for form in _encoded_forms(text):
            for fragment in (form, form[:12], form[-10:]):
                assert fragment not in everything, fragment


def _encoded_forms(text: str) -> set[str]:
    """A text as a request body carries it: raw, JSON-escaped, URL-encoded."""
    return {
        text,
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        quote_plus(text),
    }


async def _whatsapp_failures() -> list[str]:
    """WhatsApp sends that succeed and fail every way; texts and template params are secret."""
    seen: list[str] = []
    waba = {"app_id": "app-1", "app_secret": APP_SECRET, "waba_number": "60111111111"}
    answers: list[Answer] = [
        httpx.Response(200, json={"statusCode": "OK", "messageId": "1", "requestId": "r"}),
        httpx.Response(200, json={"statusCode": "1001", "message": "Authentication failed"}),
        httpx.Response(200, json={"statusCode": "45010", "message": "Reply time limit exceeded"}),
        echo,
        httpx.ReadTimeout("t"),
        httpx.ConnectError("c"),
    ]
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(path="/isms_send_waba.php")
        async with make_client(retry=RetryPolicy.no_wait(max_attempts=2), **waba) as client:
            seen.append(repr(client))
            for answer in answers:
                answer_with(route, answer)
                for text in TEXTS:
                    for call in (
                        client.send_whatsapp_text("60120000001", text),
                        client.send_whatsapp_template("60120000001", "otp", params=[text]),
                    ):
                        try:
                            seen.append(repr(await call))
                        except MessagingError as error:
                            seen += _failure(error)
                messages = [WhatsAppText(to="60120000001", text=t) for t in TEXTS] + [
                    WhatsAppTemplate(to="60120000001", template_code="otp", params={"code": t})
                    for t in TEXTS
                ]
                report = await client.send_whatsapp_bulk(messages)
                seen += [repr(report), repr(messages), *(o.reason or "" for o in report.outcomes)]
    return seen


async def _smscommy_failures() -> list[str]:
    """sms.com.my sends that succeed and fail every way; no URL may carry the password."""
    seen: list[str] = []
    answers: list[Answer] = [
        httpx.Response(200, text="1701:1143000055"),
        httpx.Response(200, text="1702"),
        httpx.Response(200, text="1703"),
        echo,
        httpx.ReadTimeout("t"),
        httpx.ConnectError("c"),
    ]
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route(host="www.sms.com.my")
        smsmy = SmsComMyClient(
            username="demo-user",
            password=PASSWORD,
            base_url="https://www.sms.com.my/websmsapi",
            retry=RetryPolicy.no_wait(max_attempts=2),
        )
        async with smsmy:
            seen.append(repr(smsmy))
            for answer in answers:
                answer_with(route, answer)
                for text in TEXTS:
                    for call in (
                        smsmy.send_sms("60120000001", text),
                        smsmy.send_sms_unicode("60120000001", text),
                        smsmy.get_credits(),
                    ):
                        try:
                            seen.append(repr(await call))
                        except MessagingError as error:
                            seen += _failure(error)
                report = await smsmy.send_sms_bulk(Sms(to="60120000001", text=t) for t in TEXTS)
                same = await smsmy.send_sms_same_text(["60120000001"], TEXTS[2])
                seen += [
                    repr(report),
                    *(o.reason or "" for o in (*report.outcomes, *same.outcomes)),
                ]
        urls = [str(call.request.url) for call in route.calls]
    assert urls
    seen += urls
    return seen


Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def answer_with(route: respx.Route, answer: Answer) -> None:
    if isinstance(answer, httpx.Response):
        route.mock(return_value=answer)
    else:
        route.mock(side_effect=answer)


async def _raises(call: object) -> MessagingError:
    try:
        await call  # type: ignore[misc]
    except MessagingError as error:
        return error
    raise AssertionError("expected a MessagingError")


def _failure(error: MessagingError) -> list[str]:
    outcome = getattr(error, "outcome", None)
    return [
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        repr(getattr(error, "attempts", ())),
        repr(outcome),
        str(getattr(outcome, "reason", "")),
    ]
