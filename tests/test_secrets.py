"""Acceptance: no password or message text in logs (every logger at DEBUG), reprs or errors."""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, quote_plus

import httpx
import pytest
import respx
from hypothesis import example, given, settings
from hypothesis import strategies as st

from messaging_async import (
    IsmsClient,
    MessagingError,
    RetryPolicy,
    Sms,
    SmsComMyClient,
    WhatsAppTemplate,
    WhatsAppText,
)
from messaging_async._secrets import MASK, Redactor, _forms
from messaging_async.isms import _outcomes, _wire

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
    _assert_no_secret_in("\n".join(seen))


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


# ------------------------------------------------------------ gateways that echo the request
NUMBERS = [f"6012345{i:04d}" for i in range(len(TEXTS))]


class EchoingGateway(TestGateway):
    """A gateway whose error answers quote what it was sent: texts, template parameters,
    password, app secret and numbers (``mode``: ``fatal`` refusals stop a bulk run,
    ``per_message`` ones reject one message, ``unreadable`` ones are no documented answer)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def handle(self, path: str, body: bytes) -> tuple[int, str]:
        if path.endswith("isms_send_json.php"):
            return 200, self._json(json.loads(body))
        if path.endswith("isms_send_all_id.php"):
            form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
            echo = f"{form['msg']} pwd={form['pwd']} to {form['dstno']}"
            code = "-1004" if self.mode == "fatal" else "-1009"
            return 200, f"{code} = REFUSED {echo}" if self.mode != "unreadable" else echo
        if path.endswith("isms_send_waba.php"):
            return 200, self._waba(json.loads(body))
        if path.endswith(".aspx"):
            form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
            if self.mode == "fatal":
                return 200, "1704"  # exact codes only: anything more is no answer
            return 200, f"1706 {form['message']} password={form['password']} {form['mobile']}"
        return 404, "not found"

    def _json(self, request: dict[str, Any]) -> str:
        echoes = [
            f"'{m['msg']}' to +{m['dstno']} pwd={request['pwd']}" for m in request["messages"]
        ]
        if self.mode == "fatal":
            message = "-1004 = INSUFFICIENT CREDITS " + "; ".join(echoes)
            return json.dumps({"status": "error", "code": -1004, "message": message})
        if self.mode == "unreadable":
            return json.dumps({"echo": echoes})
        results = [
            {"dstno": m["dstno"], "code": -1009, "message": f"-1009 = INVALID CONTENT {echo}"}
            for m, echo in zip(request["messages"], echoes, strict=True)
        ]
        return json.dumps({"total_failed": len(results), "results": results})

    def _waba(self, request: dict[str, Any]) -> str:
        said = json.dumps(request.get("TemplateParams") or request.get("Content"))
        echo = f"{said} AppSecret={request['AppSecret']} pwd={request['pwd']} To={request['To']}"
        if self.mode == "unreadable":
            return json.dumps({"echo": echo})
        code = "1004" if self.mode == "fatal" else "50500"
        return json.dumps({"statusCode": code, "message": f"refused: {echo}"})


@asynccontextmanager
async def _echo_clients(
    url: str, backend: str, *, max_attempts: int, smscommy_path: str = ""
) -> AsyncIterator[tuple[IsmsClient, SmsComMyClient]]:
    """iSMS (SMS and WhatsApp) and sms.com.my, both at ``url`` on ``backend``, with the
    password and app secret an echo would bring back."""
    waba = {"app_id": "app-1", "app_secret": APP_SECRET, "waba_number": "60111111111"}
    settings: dict[str, Any] = {
        "retry": RetryPolicy.no_wait(max_attempts=max_attempts),
        "http_backend": backend,
    }
    async with (
        make_client(sms_base_urls=[url], waba_base_urls=[url], **waba, **settings) as isms,
        SmsComMyClient(
            username="demo-user", password=PASSWORD, base_url=url + smscommy_path, **settings
        ) as smsmy,
    ):
        yield isms, smsmy


def _assert_no_secret_in(everything: str, *, bytes_repr: bool = False) -> None:
    """No password, app secret or text (in any encoded form, whole or cut) in ``everything``;
    ``bytes_repr``: nor a text as the repr of its UTF-8 bytes (what a protocol error quotes)."""
    assert PASSWORD not in everything
    assert APP_SECRET not in everything
    for text in TEXTS:
        forms = _encoded_forms(text) | ({repr(text.encode())[2:-1]} if bytes_repr else set())
        for form in forms:
            for fragment in (form, form[:12], form[-10:]):
                assert fragment not in everything, (
                    fragment,
                    everything[everything.index(fragment) - 300 : everything.index(fragment) + 100],
                )


async def _echoed(url: str, backend: str, mode: str) -> tuple[list[str], list[str]]:
    """Every error, reason, ``stopped_by`` and refusal ``raw`` the four APIs produce against
    an echoing gateway: ``(texts to search, texts that must quote the gateway)``."""
    seen: list[str] = []
    quoting: list[str] = []  # proof the gateway's words did reach us, redacted
    sms = [Sms(to=number, text=text) for number, text in zip(NUMBERS, TEXTS, strict=True)]
    clients = _echo_clients(url, backend, max_attempts=2, smscommy_path="/websmsapi")
    async with clients as (isms, smsmy):
        reports = [
            await isms.send_sms_bulk(sms),
            await isms.send_sms_classic(NUMBERS[:1], TEXTS[1]),
            await isms.send_whatsapp_bulk(
                [WhatsAppText(to=n, text=t) for n, t in zip(NUMBERS, TEXTS, strict=True)]
                + [WhatsAppTemplate(to=NUMBERS[0], template_code="otp", params=[t]) for t in TEXTS]
            ),
            await smsmy.send_sms_bulk(sms),
        ]
        for report in reports:
            seen += [repr(report), str(report.stopped_by), repr(report.stopped_by)]
            if report.stopped_by is not None:
                seen += [str(report.stopped_by.gateway_message), repr(report.stopped_by.raw)]
            for outcome in report.outcomes:
                seen += [outcome.reason or "", repr(outcome.raw), str(outcome.error)]
        for number, text in zip(NUMBERS, TEXTS, strict=True):
            for call, quotes in (
                (isms.send_sms(number, text), True),
                (isms.send_whatsapp_template(number, "otp", params={"code": text}), True),
                (isms.send_whatsapp_text(number, text), True),
                (smsmy.send_sms(number, text), mode != "fatal"),  # 1704 quotes nothing
            ):
                error = await _raises(call)
                seen += _failure(error)
                seen += [
                    str(getattr(error, "gateway_message", "")),
                    repr(getattr(error, "raw", "")),
                ]
                if quotes:
                    quoting.append(str(error))
    return seen, quoting


@pytest.mark.parametrize("mode", ["fatal", "per_message", "unreadable"])
async def test_a_gateway_echoing_the_request_leaks_nothing_anywhere(
    debug_everywhere: pytest.LogCaptureFixture, mode: str
) -> None:
    """iSMS JSON and classic, WhatsApp and sms.com.my, over sockets on both backends: the
    echoed password, app secret, texts and template parameters reach no exception message,
    outcome reason, ``stopped_by``, refusal ``raw`` or log record; numbers are masked."""
    seen: list[str] = []
    quoting: list[str] = []
    with serve_on_loopback(EchoingGateway(mode)) as url:
        for backend in ("httpx", "aiohttp"):
            more, quoted = await _echoed(url, backend, mode)
            seen += more
            quoting += quoted
    ours = [r for r in debug_everywhere.records if r.name.startswith("messaging_async")]
    logged = [r.getMessage() for r in debug_everywhere.records] + [debug_everywhere.text]
    if mode == "fatal":
        stopped = [r.getMessage() for r in ours if "bulk run stopped" in r.getMessage()]
        assert len(stopped) >= 6, stopped  # iSMS JSON, WhatsApp, sms.com.my, per backend
        assert all("6012****" in line or "sms.com.my" in line for line in stopped), stopped
    everything = "\n".join(seen + logged)
    assert quoting
    assert all("***" in text for text in quoting), quoting  # the gateway's words came through
    _assert_no_secret_in(everything)
    for record in ours:  # our own log lines mask phone numbers
        for number in NUMBERS:
            assert number not in record.getMessage() + (record.exc_text or ""), record.getMessage()


def test_the_redactor_catches_every_form_and_masks_numbers() -> None:
    redact = Redactor([PASSWORD, "OTP 918273", "60129999999"], ["60123456789"])
    echoed = json.dumps(json.dumps({"pwd": PASSWORD, "msg": "otp 918273 ✓"}))
    assert PASSWORD not in redact(echoed)
    assert "918273" not in redact(echoed)
    assert (
        redact(f"{PASSWORD.upper()} &quot;x&quot; {quote_plus('OTP 918273')}")
        == "*** &quot;x&quot; ***"
    )
    assert redact("to +60123456789 and 60129999999") == "to 6012*****89 and ***"
    assert redact.scrub({"m": ["OTP 918273", 1]}) == {"m": ["***", 1]}
    assert Redactor()("nothing to hide") == "nothing to hide"


async def _echo_in_a_broken_header(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """An answer whose malformed header line is the request body: httpx's and aiohttp's
    protocol errors quote such a line in their messages."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    body = (await reader.readexactly(length)).replace(b"\r", b"").replace(b"\n", b"")
    writer.write(b"HTTP/1.1 200 OK\r\nX-Echo " + body + b"\r\n\r\n")
    await writer.drain()
    writer.close()


async def test_a_malformed_answer_echoing_the_request_leaks_nothing(
    debug_everywhere: pytest.LogCaptureFixture,
) -> None:
    """A protocol error quoting the answer's bytes (the request echoed in a broken header)
    reaches notes, ``attempts``, exceptions and the failover log only redacted."""
    seen: list[str] = []
    server = await asyncio.start_server(_echo_in_a_broken_header, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        for backend in ("httpx", "aiohttp"):
            async with _echo_clients(url, backend, max_attempts=2) as (isms, smsmy):
                for number, text in zip(NUMBERS, TEXTS, strict=True):
                    for call in (
                        isms.send_sms(number, text),
                        isms.send_whatsapp_template(number, "otp", params=[text]),
                        smsmy.send_sms(number, text),
                    ):
                        error = await _raises(call)
                        assert "***" in str(error)  # the protocol error did quote the body
                        seen += _failure(error)
                report = await isms.send_sms_bulk(
                    Sms(to=n, text=t) for n, t in zip(NUMBERS, TEXTS, strict=True)
                )
                seen += [o.reason or "" for o in report.outcomes]
    seen += [record.getMessage() for record in debug_everywhere.records]
    _assert_no_secret_in("\n".join(seen), bytes_repr=True)


def test_an_unknown_result_keeps_no_echo_in_its_raw() -> None:
    """A result with no code is ``unknown``; its ``raw`` is redacted like a refusal's."""
    echo = {"dstno": NUMBERS[0], "message": f"{TEXTS[0]} pwd={PASSWORD}"}
    answer = _wire.parse_json_send(json.dumps({"results": [echo]}))
    redact = Redactor([PASSWORD, TEXTS[0]], [NUMBERS[0]])
    (outcome,), _ = _outcomes.chunk_outcomes([(0, NUMBERS[0], None)], answer, redact)
    assert outcome.status.value == "unknown"
    assert outcome.raw == {"dstno": "6012*****00", "message": "*** pwd=***"}


@given(
    st.text(alphabet=st.characters(exclude_characters="«»"), min_size=1, max_size=40),
    st.sampled_from(["{}", "«{}»", "« {} »"]),
)
@settings(max_examples=300, deadline=None)
@example("\ud800", "{}")  # a lone surrogate: no form may fail to encode
def test_a_secret_is_redacted_in_every_form_it_may_be_echoed_in(secret: str, around: str) -> None:
    """The quick look for a secret's ASCII words never skips a form of it."""
    if not secret.strip():
        return
    for form in _forms(secret):
        ascii_upper = "".join(ch.upper() if ch.isascii() else ch for ch in form)  # PHP's strtoupper
        for echoed in (form, ascii_upper):
            redacted = Redactor([secret])(around.format(echoed))
            assert redacted == around.format(MASK), (secret, form)


async def _echo_in_a_header(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A well-formed answer that echoes the request body in response headers (cookies too:
    aiohttp logs the names of cookies it cannot load), its reason phrase and its body:
    httpcore's DEBUG trace logs the status line and headers it reads."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    body = (await reader.readexactly(length)).replace(b"\r", b"").replace(b"\n", b"")
    writer.write(
        b"HTTP/1.1 200 "
        + body
        + b"\r\nX-Echo: "
        + body
        + b"\r\nSet-Cookie: "
        + body
        + b"\r\nSet-Cookie: "
        + body.replace(b"=", b" ")
        + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        + body
    )
    await writer.drain()
    writer.close()


async def test_an_answer_echoing_the_request_in_a_header_leaks_nothing_in_debug_logs(
    debug_everywhere: pytest.LogCaptureFixture,
) -> None:
    """httpcore logs the status line and headers it read (``receive_response_headers.complete
    return_value=(…, [(b'X-Echo', b'…pwd…')])``); none of an answer's words reach any
    httpcore, httpx or aiohttp record, on either backend, while the event itself still does."""
    server = await asyncio.start_server(_echo_in_a_header, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        for backend in ("httpx", "aiohttp"):
            async with _echo_clients(url, backend, max_attempts=1) as (isms, smsmy):
                for number, text in zip(NUMBERS, TEXTS, strict=True):
                    for call in (
                        isms.send_sms(number, text),
                        isms.send_whatsapp_template(number, "otp", params=[text]),
                        smsmy.send_sms(number, text),
                    ):
                        await _raises(call)
    third_party = [
        record
        for record in debug_everywhere.records
        if record.name.split(".")[0] in {"httpx", "httpcore", "aiohttp"}
    ]
    logged = "\n".join(record.getMessage() for record in third_party)
    assert "receive_response_headers.complete status=200" in logged  # the trace did run
    assert "X-Echo" not in logged
    _assert_no_secret_in(logged, bytes_repr=True)
    for number in NUMBERS:
        assert number not in logged


# ------------------------------------------------------------ echoes of part of a secret
def test_part_of_a_text_echoed_back_is_redacted_and_a_short_password_only_as_a_token() -> None:
    """A gateway quoting only the OTP, a cut text or one word of it leaks none of them; a
    one-letter password is redacted where it stands alone, not in every word with a ``p``."""
    redact = Redactor(["p", "Your verification code is 918273, valid 5 min"])
    assert redact("(rejected: 918273)") == "(rejected: ***)"
    assert redact("REJECTED 'YOUR VERIFICATION CODE IS 9182'") == "REJECTED 'YOUR *** CODE IS ***'"
    assert redact("code 1918273x 91827") == "code 1***x ***"  # digits around it hide nothing
    assert redact("Your OTP is ready, pwd=p") == "Your OTP is ready, pwd=***"
    assert redact("Payment of 2024 at 12:30") == "Payment of 2024 at 12:30"  # nothing of ours
    codes = Redactor(["Use code A7X9 now"])
    assert codes("bad code a7x9") == "bad code ***"  # a short word with a digit is a code
    assert Redactor(["OTP 1234"], ["60123456789"])("to 60123456789: 1234") == (
        "to 6012*****89: ***"  # a number keeps its masked form next to a redacted OTP
    )


async def test_a_bulk_stop_quoting_part_of_the_texts_leaks_it_nowhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Texts ``OTP 918273 {n}``; the fatal refusal echoes ``OTP 918273``: not in
    ``stopped_by``, any reason, or the ``bulk run stopped`` warning."""
    refusal = {"status": "error", "code": -1004, "message": "-1004 = NO CREDITS: OTP 918273"}
    messages = [Sms(to=f"6012000{n:04d}", text=f"OTP 918273 {n}") for n in range(60)]
    with respx.mock(assert_all_called=False) as mock:
        mock.post(path="/isms_send_json.php").mock(return_value=httpx.Response(200, json=refusal))
        async with make_client() as client:
            report = await client.send_sms_bulk(messages)
    stopped = [r.getMessage() for r in caplog.records if "bulk run stopped" in r.getMessage()]
    assert stopped
    seen = [*stopped, str(report.stopped_by), *(o.reason or "" for o in report.outcomes)]
    assert "NO CREDITS: OTP ***" in stopped[0]
    assert not [line for line in seen if "9182" in line or "8273" in line], seen


@given(
    st.text(max_size=20),
    st.text(alphabet="0123456789", min_size=4, max_size=12),
    st.text(max_size=20),
    st.data(),
)
@settings(max_examples=300, deadline=None)
def test_no_four_digits_in_a_row_of_a_text_survive(
    before: str, digits: str, after: str, data: st.DataObject
) -> None:
    """Any substring of 4 digits or more of a text, quoted anywhere in a gateway's words,
    is redacted, with the password and a recipient's number in the same redactor."""
    text = before + digits + after
    start = data.draw(st.integers(0, len(digits) - 4))
    piece = digits[start : data.draw(st.integers(start + 4, len(digits)))]
    around = data.draw(st.text(alphabet=st.characters(exclude_categories=["Nd"]), max_size=10))
    noise = data.draw(st.sampled_from(["{}", "x{}y", "({})", "{}{}", "'{}' and {}"]))
    echoed = around + noise.replace("{}", piece) + around
    redacted = Redactor([PASSWORD, text], ["60123456789"])(echoed)
    assert piece not in redacted, (text, echoed, redacted)
