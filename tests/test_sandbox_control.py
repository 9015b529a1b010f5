"""The sandbox driven over its socket: the ``/_sandbox/`` control API, the connection faults
(429, close before answering, idle keep-alive close) and late, repeated delivery reports.

Raw httpx and raw TCP, no SDK, on servers these tests start on 127.0.0.1 (docs/sandbox.md).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

import anyio
import httpx
import pytest

from messaging_async import DeliveryStatus, OutcomeUnknownError, WebhookReceiver
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

TOKEN = "control-test-token-0123456789"
AUTH = {"un": SANDBOX_USERNAME, "pwd": SANDBOX_PASSWORD}


def sms_body(*numbers: str, text: str = "Your OTP is 123456") -> dict[str, Any]:
    messages = [{"dstno": number, "msg": text} for number in numbers]
    return {**AUTH, "type": "1", "agreedterm": "YES", "messages": messages}


def smsmy_query(number: str) -> dict[str, str]:
    return {
        "username": SANDBOX_USERNAME,
        "password": SANDBOX_PASSWORD,
        "mobile": number,
        "message": "hello",
        "type": "1",
    }


class Receiver:
    """A WebhookReceiver served on its own loopback port, recording every event."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.app = WebhookReceiver(secret=TOKEN, on_delivery=self.record, on_whatsapp=self.record)
        self._arrived = anyio.Event()

    async def record(self, event: Any) -> None:
        self.events.append(event)
        self._arrived.set()

    async def wait_for(self, count: int) -> list[Any]:
        with anyio.fail_after(20):
            while len(self.events) < count:
                self._arrived = anyio.Event()
                await self._arrived.wait()
        return self.events


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hooks = Receiver()
    async with serve(hooks.app) as url:
        yield hooks, url


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeGateway, httpx.AsyncClient]]:
    fake = FakeGateway()
    async with serve(fake) as url, httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        yield fake, http


# ---------------------------------------------------------------- the control API
async def test_sent_lists_what_was_accepted_and_filters_by_number(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    fake, http = served
    answer = (await http.post("/isms_send_json.php", json=sms_body("60123456789"))).json()
    await http.get("/websmsapi/ISendSMS.aspx", params=smsmy_query("60198765432"))
    everything = (await http.get("/_sandbox/sent")).json()
    assert everything["count"] == 2
    only = (await http.get("/_sandbox/sent", params={"to": "60123456789"})).json()
    assert only["count"] == 1
    (record,) = only["sent"]
    assert record["message_id"] == answer["results"][0]["sms_id"]
    assert record["text"] == "Your OTP is 123456"
    assert record["gateway"] == "isms"
    assert record["credits"] == "1"  # Decimal as a string: JSON numbers would round it
    assert (await http.get("/_sandbox/sent", params={"to": "60100000000"})).json()["count"] == 0
    assert fake.requests == 2  # the control calls are not gateway requests


async def test_faults_are_added_listed_used_up_and_cleared(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    fake, http = served
    added = await http.post(
        "/_sandbox/faults",
        json={"fault": "code", "endpoint": "isms_send_json.php", "code": -1003, "times": 2},
    )
    assert added.status_code == 201
    assert added.json()["faults"][0]["times"] == 2
    for _ in range(2):
        refused = await http.post("/isms_send_json.php", json=sms_body("60123456789"))
        assert refused.json()["code"] == -1003
    assert (await http.get("/_sandbox/faults")).json() == {"faults": []}  # used up
    await http.post("/_sandbox/faults", json={"fault": "server_error", "times": None})
    assert (await http.post("/isms_balance_json.php", json=AUTH)).status_code == 502
    assert (await http.post("/isms_balance_json.php", json=AUTH)).status_code == 502
    assert (await http.delete("/_sandbox/faults")).json() == {"faults": []}
    assert (await http.post("/isms_balance_json.php", json=AUTH)).status_code == 200
    assert fake.sent == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"fault": "meteor"}, "'fault' must be one of"),
        ({"fault": "code"}, "needs code="),
        ({"fault": "slow", "times": 0}, "times"),
        ({"fault": "slow", "delay": "soon"}, "'delay'"),
        ({"fault": "slow", "colour": "red"}, "unknown fields: colour"),
        ([1, 2], "JSON object"),
    ],
)
async def test_a_bad_fault_is_a_400_that_says_why(
    served: tuple[FakeGateway, httpx.AsyncClient], body: Any, problem: str
) -> None:
    fake, http = served
    answer = await http.post("/_sandbox/faults", json=body)
    assert answer.status_code == 400
    assert problem in answer.json()["error"]
    assert fake.describe_faults() == []


async def test_unknown_control_paths_and_methods(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    _fake, http = served
    missing = await http.get("/_sandbox/nothing")
    assert missing.status_code == 404
    assert "GET /_sandbox/sent" in missing.json()["endpoints"]
    assert (await http.post("/_sandbox/sent")).status_code == 405
    assert (await http.post("/_sandbox/reset", content=b"{oops")).status_code == 400


async def test_inbound_whatsapp_opens_the_window_and_posts_the_webhook(
    receiver: tuple[Receiver, str],
) -> None:
    hooks, hooks_url = receiver
    fake = FakeGateway(webhook=WebhookTarget(hooks_url, token=TOKEN))
    free_text = {
        **AUTH,
        "AppId": SANDBOX_APP_ID,
        "AppSecret": SANDBOX_APP_SECRET,
        "agreedterm": "YES",
        "ChannelType": "whatsapp",
        "Type": "message",
        "From": SANDBOX_WABA_NUMBER,
        "To": "60123456789",
        "Content": "Thanks for writing",
    }
    async with serve(fake) as url, httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        closed = (await http.post("/isms_send_waba.php", json=free_text)).json()
        assert closed["statusCode"] == "45010"  # no window yet
        inbound = await http.post(
            "/_sandbox/whatsapp/inbound", json={"from": "60123456789", "text": "hi there"}
        )
        assert inbound.status_code == 200
        assert inbound.json()["message"]["from"] == "60123456789"
        (event,) = await hooks.wait_for(1)
        assert event.text == "hi there"
        opened = (await http.post("/isms_send_waba.php", json=free_text)).json()
        assert opened["statusCode"] == "OK"
        missing = await http.post("/_sandbox/whatsapp/inbound", json={"from": "60123456789"})
        assert missing.status_code == 400


async def test_reports_sends_the_pending_reports_now_with_the_ids_sent(
    receiver: tuple[Receiver, str],
) -> None:
    hooks, hooks_url = receiver
    fake = FakeGateway(webhook=WebhookTarget(hooks_url, token=TOKEN), report_delay=3600)
    async with serve(fake) as url, httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        sent = (await http.post("/isms_send_json.php", json=sms_body("60123456789"))).json()
        smsmy = await http.get("/websmsapi/ISendSMS.aspx", params=smsmy_query("60198765432"))
        assert fake.pending_reports == 2  # an hour away
        answer = await http.post("/_sandbox/reports")
        assert answer.json() == {"delivered": 2}
        assert (await http.post("/_sandbox/reports")).json() == {"delivered": 0}
    ids = {(event.gateway, event.message_id) for event in hooks.events}
    assert ids == {
        ("isms", sent["results"][0]["sms_id"]),
        ("smscommy", smsmy.text.split(":")[1]),
    }


async def test_reports_without_a_webhook_is_a_409(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    _fake, http = served
    answer = await http.post("/_sandbox/reports")
    assert answer.status_code == 409
    assert "--webhook" in answer.json()["error"]


async def test_a_webhook_that_cannot_be_reached_is_a_502_and_the_reports_stay_owed() -> None:
    with anyio.fail_after(10):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610
        await listener.aclose()  # nothing listens there now
    fake = FakeGateway(webhook=WebhookTarget(f"http://127.0.0.1:{port}", token=TOKEN))
    async with serve(fake) as url, httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        await http.post("/isms_send_json.php", json=sms_body("60123456789"))
        answer = await http.post("/_sandbox/reports")
        assert answer.status_code == 502
        assert TOKEN not in answer.text
        assert fake.pending_reports == 1


async def test_reset_goes_back_to_the_starting_state() -> None:
    fake = FakeGateway(isms_credits=5, templates=["welcome"])
    async with serve(fake) as url, httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        await http.post("/isms_send_json.php", json=sms_body("60123456789", "60123456788"))
        await http.post("/_sandbox/whatsapp/inbound", json={"from": "60123456789", "text": "hi"})
        await http.post("/_sandbox/faults", json={"fault": "server_error", "times": None})
        fake.templates.add("extra")
        assert (await http.post("/_sandbox/reset")).json() == {"reset": True}
        assert (await http.get("/_sandbox/sent")).json()["count"] == 0
        assert fake.describe_faults() == []
        assert fake.isms_credits == 5
        assert fake.templates == {"welcome"}
        assert not fake.window_open("60123456789")
        assert fake.pending_reports == 0
        again = (await http.post("/isms_send_json.php", json=sms_body("60123456789"))).json()
    assert again["results"][0]["code"] == 2000
    assert int(again["results"][0]["sms_id"]) > 1_143_000_002  # ids never repeat


@pytest.mark.parametrize("client", [("192.0.2.7", 40000), ("10.0.0.2", 1), None])
async def test_the_control_api_refuses_clients_that_are_not_loopback(
    client: tuple[str, int] | None,
) -> None:
    fake = FakeGateway()
    received: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope = {**scope, "client": client}  # as a server would fill it in
        received.append(1)
        await fake(scope, receive, send)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        for method, path in [("GET", "/_sandbox/sent"), ("POST", "/_sandbox/reset")]:
            answer = await http.request(method, path)
            assert answer.status_code == 403
            assert "loopback" in answer.json()["error"]
        # The gateway endpoints themselves stay open (the socket is loopback-only anyway).
        assert (await http.post("/isms_balance_json.php", json=AUTH)).status_code == 200
    assert len(received) == 3


async def test_the_control_api_works_in_process_too() -> None:
    fake = FakeGateway()
    async with httpx.AsyncClient(transport=fake.transport(), base_url="https://x") as http:
        await http.post("/_sandbox/faults", json={"fault": "throttled", "delay": 0})
        throttled = await http.post("/isms_balance_json.php", json=AUTH)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "0"


# ---------------------------------------------------------------- the new faults
async def test_throttled_is_a_429_with_retry_after_and_not_processed(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    fake, http = served
    fake.inject(Fault.THROTTLED, endpoint="isms_send_json.php", delay=1.5)
    answer = await http.post("/isms_send_json.php", json=sms_body("60123456789"))
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "2"  # whole seconds, rounded up
    assert fake.sent == []
    assert (await http.post("/isms_send_json.php", json=sms_body("60123456789"))).is_success
    assert len(fake.sent) == 1


async def test_the_sdk_waits_out_a_429_and_sends_once() -> None:
    fake = FakeGateway()
    fake.inject(Fault.THROTTLED, endpoint="isms_send_json.php", delay=0)
    async with serve(fake) as url, fake.isms_client(base_url=url) as isms:
        outcome = await isms.send_sms("60123456789", "hello")
    assert outcome.ok
    assert [m.message_id for m in fake.sent] == [outcome.message_id]


async def test_close_drops_the_connection_without_a_byte_after_processing(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    fake, http = served
    fake.inject(Fault.CLOSE, endpoint="isms_send_json.php")
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await http.post("/isms_send_json.php", json=sms_body("60123456789"))
    assert len(fake.sent) == 1  # processed: the answer, not the send, was lost
    assert (await http.post("/isms_send_json.php", json=sms_body("60123456788"))).is_success


async def test_close_over_raw_tcp_sends_nothing_at_all(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    fake, http = served
    fake.inject(Fault.CLOSE)
    port = http.base_url.port
    assert port is not None
    request = (
        b"GET /websmsapi/creditsLeft.aspx?username=sandbox&password=sandbox-password HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n\r\n"
    )
    with anyio.fail_after(10):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(request)
            received = b""
            with suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                while True:
                    received += await stream.receive()
    assert received == b""


async def test_close_in_process_raises_what_httpx_raises() -> None:
    fake = FakeGateway()
    fake.inject(Fault.CLOSE)
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("https://www.isms.com.my/isms_send_json.php", json=sms_body("60123"))
        await http.post("https://www.isms.com.my/isms_send_json.php", json=sms_body("60123456789"))
    assert len(fake.sent) == 1


async def test_an_isms_send_cut_by_close_is_unknown_never_resent() -> None:
    fake = FakeGateway()
    fake.inject(Fault.CLOSE, endpoint="isms_send_json.php")
    async with serve(fake) as url, fake.isms_client(base_url=url) as isms:
        with pytest.raises(OutcomeUnknownError):
            await isms.send_sms("60123456789", "hello")
    assert len(fake.sent) == 1


async def read_one_answer(stream: Any) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += await stream.receive()
    return head


async def idle_lifetime(port: int) -> float:
    """Seconds a kept-alive connection stays open after its answer (capped at 4)."""
    request = (
        b"GET /websmsapi/creditsLeft.aspx?username=sandbox&password=sandbox-password HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n\r\n"
    )
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request)
        assert b"200 OK" in await read_one_answer(stream)
        answered = anyio.current_time()
        with anyio.move_on_after(4), suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            await stream.receive()
        return anyio.current_time() - answered


async def test_idle_close_shuts_idle_connections_after_the_delay(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    fake, http = served
    port = http.base_url.port
    assert port is not None
    assert await idle_lifetime(port) >= 4  # uvicorn's own keep-alive is 5 s
    fake.inject(Fault.IDLE_CLOSE, delay=0.2)
    assert await idle_lifetime(port) < 3
    assert fake.faults_applied["idle_close"] == 1


async def test_idle_close_stands_apart_from_per_request_faults(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    fake, http = served
    fake.inject(Fault.IDLE_CLOSE, delay=30, times=None)  # a standing server setting
    fake.inject(Fault.SERVER_ERROR)
    assert (await http.post("/isms_balance_json.php", json=AUTH)).status_code == 502
    assert (await http.post("/isms_balance_json.php", json=AUTH)).status_code == 200
    with pytest.raises(ValueError, match="inject it instead"):
        fake.chaos([Fault.IDLE_CLOSE])


async def test_idle_close_in_process_changes_nothing() -> None:
    fake = FakeGateway()
    fake.inject(Fault.IDLE_CLOSE, delay=0)
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        answer = await http.post("https://www.isms.com.my/isms_balance_json.php", json=AUTH)
    assert answer.status_code == 200


# ---------------------------------------------------------------- late and repeated reports
async def test_reports_arrive_late_queued_first_then_the_outcome(
    receiver: tuple[Receiver, str],
) -> None:
    hooks, hooks_url = receiver
    now = [1000.0]
    fake = FakeGateway(
        webhook=WebhookTarget(hooks_url, token=TOKEN),
        report_delay=60,
        queued_reports=1,
        delivery_outcomes={"60123456788": DeliveryStatus.FAILED},
        clock=lambda: now[0],
    )
    async with (
        serve(fake) as url,
        httpx.AsyncClient(base_url=url, timeout=10.0) as http,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(fake.report_when_due)
        answer = await http.post("/isms_send_json.php", json=sms_body("60123456789", "60123456788"))
        smsmy = await http.get("/websmsapi/ISendSMS.aspx", params=smsmy_query("60198765432"))
        await anyio.sleep(0.3)
        assert hooks.events == []  # nothing is due yet
        now[0] += 30  # half way: the "queued in the telco" reports
        queued = await hooks.wait_for(3)
        assert {event.status for event in queued} == {DeliveryStatus.QUEUED}
        await anyio.sleep(0.3)
        assert len(hooks.events) == 3
        now[0] += 30
        await hooks.wait_for(6)
        tasks.cancel_scope.cancel()
    finals = {(e.message_id, e.recipient): e.status for e in hooks.events[3:]}
    ids = [result["sms_id"] for result in answer.json()["results"]]
    assert finals == {
        (ids[0], "60123456789"): DeliveryStatus.DELIVERED,
        (ids[1], "60123456788"): DeliveryStatus.FAILED,
        (smsmy.text.split(":")[1], None): DeliveryStatus.DELIVERED,
    }
    assert fake.pending_reports == 0


async def test_deliver_reports_sends_everything_owed_in_order_per_message() -> None:
    events: list[Any] = []

    async def record(event: Any) -> None:
        events.append(event)

    receiver = WebhookReceiver(secret=TOKEN, on_delivery=record)
    fake = FakeGateway(
        webhook=WebhookTarget(receiver, token=TOKEN), report_delay=3600, queued_reports=2
    )
    async with fake.smscommy_client() as client:
        outcome = await client.send_sms("60123456789", "hello")
    assert fake.pending_reports == 3
    assert await fake.deliver_reports() == 3
    assert [e.status for e in events] == [DeliveryStatus.QUEUED] * 2 + [DeliveryStatus.DELIVERED]
    assert {e.message_id for e in events} == {outcome.message_id}


async def test_sending_now_never_lets_an_outcome_overtake_its_queued_report() -> None:
    events: list[Any] = []
    busy, release = anyio.Event(), anyio.Event()

    async def record(event: Any) -> None:
        if event.status is DeliveryStatus.QUEUED:  # the receiver is slow with the first
            busy.set()
            await release.wait()
        events.append(event.status)

    receiver = WebhookReceiver(secret=TOKEN, on_delivery=record)
    now = [0.0]
    fake = FakeGateway(
        webhook=WebhookTarget(receiver, token=TOKEN),
        report_delay=10,
        queued_reports=1,
        clock=lambda: now[0],
    )
    async with fake.smscommy_client() as client:
        await client.send_sms("60123456789", "hello")
    now[0] = 6  # the queued report is due, the outcome is not
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(fake.report_when_due)
            await busy.wait()
            tasks.start_soon(fake.deliver_reports)  # "send the rest now", mid-round
            await anyio.sleep(0.2)
            release.set()
            while len(events) < 2:  # noqa: ASYNC110 - two tasks write; polling is simplest
                await anyio.sleep(0.02)
            tasks.cancel_scope.cancel()
    assert events == [DeliveryStatus.QUEUED, DeliveryStatus.DELIVERED]


def test_report_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="report_delay"):
        FakeGateway(report_delay=-1)
    with pytest.raises(ValueError, match="queued_reports"):
        FakeGateway(queued_reports=-1)


# ---------------------------------------------------------------- access log
async def test_served_sandboxes_write_no_access_log(
    served: tuple[FakeGateway, httpx.AsyncClient],
) -> None:
    """uvicorn's access log would record callback tokens, numbers and message texts; even
    with the logger turned up to DEBUG, a served sandbox gives it nothing."""
    _fake, http = served
    records: list[logging.LogRecord] = []

    class Spy(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            records.append(record)
            return False

    spy, access = Spy(), logging.getLogger("uvicorn.access")
    level = access.level
    access.addFilter(spy)
    access.setLevel(logging.DEBUG)
    try:
        await http.get("/websmsapi/ISendSMS.aspx", params=smsmy_query("60123456789"))
    finally:
        access.removeFilter(spy)
        access.setLevel(level)
    assert records == []
