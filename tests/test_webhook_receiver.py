"""WebhookReceiver: auth, errors, de-duplication, IP allow-list; plain and inside FastAPI."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from messaging_async import (
    DeliveryReport,
    DeliveryStatus,
    IncomingSms,
    ValidationError,
    WebhookReceiver,
    WhatsAppInbound,
)
from messaging_async.cli._demo import run_demo
from messaging_async.testing import serve
from messaging_async.webhooks import AccessLogFilter, Claim, MemoryDeduplicator

SECRET = "a-long-shared-secret-0123456789"
OTP_TEXT = "Your OTP is 556677"


def whatsapp_form(message_id: str = "wamid.1", text: str = OTP_TEXT) -> bytes:
    payload = {"from": "60123456789", "messageId": message_id, "type": "text", "text": text}
    return urlencode({"response": base64.b64encode(json.dumps(payload).encode()).decode()}).encode()


class Recorder:
    def __init__(self, fail: bool = False):
        self.events: list[Any] = []
        self.fail = fail

    async def __call__(self, event: Any) -> None:
        self.events.append(event)
        if self.fail:
            raise RuntimeError(f"handler broke while reading {getattr(event, 'text', '')}")


def receiver(**overrides: Any) -> tuple[WebhookReceiver, Recorder]:
    recorder = Recorder(fail=overrides.pop("fail", False))
    settings: dict[str, Any] = {
        "secret": SECRET,
        "on_whatsapp": recorder,
        "on_delivery": recorder,
        "on_incoming_sms": recorder,
    }
    settings.update(overrides)
    return WebhookReceiver(**settings), recorder


def first_report_hangs(
    handler_timeout: float | None, started: anyio.Event | None = None
) -> tuple[WebhookReceiver, list[DeliveryReport]]:
    """A receiver whose handler never finishes the first delivery report it is given
    (``started`` is set when it begins); later ones are handled at once. Also returns the
    list of every report the handler was called with."""
    calls: list[DeliveryReport] = []

    async def on_delivery(report: DeliveryReport) -> None:
        calls.append(report)
        if len(calls) == 1:
            if started is not None:
                started.set()
            await anyio.sleep_forever()

    app = WebhookReceiver(
        secret=SECRET,
        on_delivery=on_delivery,
        dedupe=MemoryDeduplicator(),
        handler_timeout=handler_timeout,
    )
    return app, calls


async def client_for(app: Any, address: str = "203.0.113.7") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as client:
        yield client


@pytest.fixture
async def plain() -> AsyncIterator[tuple[httpx.AsyncClient, Recorder, str]]:
    app, recorder = receiver(dedupe=MemoryDeduplicator())
    async for client in client_for(app):
        yield client, recorder, ""


@pytest.fixture
async def in_fastapi() -> AsyncIterator[tuple[httpx.AsyncClient, Recorder, str]]:
    app, recorder = receiver(dedupe=MemoryDeduplicator())
    api = FastAPI()
    api.mount("/hooks", app)
    async for client in client_for(api):
        yield client, recorder, "/hooks"


@pytest.fixture(params=["plain", "in_fastapi"])
def served(request: pytest.FixtureRequest) -> tuple[httpx.AsyncClient, Recorder, str]:
    value: tuple[httpx.AsyncClient, Recorder, str] = request.getfixturevalue(request.param)
    return value


async def test_every_route_delivers_its_event(
    served: tuple[httpx.AsyncClient, Recorder, str],
) -> None:
    client, recorder, prefix = served
    form = {"content-type": "application/x-www-form-urlencoded"}
    answers = [
        await client.post(
            f"{prefix}/isms/whatsapp?token={SECRET}", content=whatsapp_form(), headers=form
        ),
        await client.get(
            f"{prefix}/isms/delivery?token={SECRET}&sms_id=1&dstno=6012&status=DELIVRD"
        ),
        await client.get(
            f"{prefix}/smscommy/delivery?token={SECRET}&MsgId=2&Sender=6011&Status=7&u=user"
        ),
        await client.get(
            f"{prefix}/smscommy/incoming/?token={SECRET}&Shortcode=6011&Sender=6019&ContentType=2&Msg=004100420043"
        ),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 200]
    whatsapp, isms, smscommy, incoming = recorder.events
    assert isinstance(whatsapp, WhatsAppInbound)
    assert whatsapp.text == OTP_TEXT
    assert isinstance(isms, DeliveryReport)
    assert isms.status is DeliveryStatus.DELIVERED
    assert isinstance(smscommy, DeliveryReport)
    assert smscommy.status is DeliveryStatus.FAILED
    assert smscommy.raw == {"MsgId": "2", "Sender": "6011", "Status": "7", "u": "user"}  # no token
    assert isinstance(incoming, IncomingSms)
    assert incoming.text == "ABC"


@pytest.mark.parametrize("token", [None, "", "wrong", SECRET + "x", SECRET[:-1]])
async def test_wrong_or_missing_token_is_401_and_the_handler_is_not_called(
    served: tuple[httpx.AsyncClient, Recorder, str], token: str | None
) -> None:
    client, recorder, prefix = served
    query = "" if token is None else f"token={token}&"
    answer = await client.get(f"{prefix}/smscommy/delivery?{query}MsgId=1&Status=6")
    posted = await client.post(f"{prefix}/isms/whatsapp?{query}", content=whatsapp_form())
    assert (answer.status_code, posted.status_code) == (401, 401)
    assert recorder.events == []


async def test_a_token_given_twice_is_refused(
    served: tuple[httpx.AsyncClient, Recorder, str],
) -> None:
    client, recorder, prefix = served
    answer = await client.get(f"{prefix}/smscommy/delivery?token={SECRET}&token=x&MsgId=1")
    assert answer.status_code == 401
    assert recorder.events == []


async def test_malformed_is_400_oversize_413_wrong_method_405_unknown_404(
    served: tuple[httpx.AsyncClient, Recorder, str],
) -> None:
    client, recorder, prefix = served
    assert (
        await client.get(f"{prefix}/smscommy/delivery?token={SECRET}&Status=6")
    ).status_code == 400
    assert (
        await client.post(f"{prefix}/isms/whatsapp?token={SECRET}", content=b"response=%%%")
    ).status_code == 400
    big = await client.post(
        f"{prefix}/isms/whatsapp?token={SECRET}", content=b"x" * (64 * 1024 + 1)
    )
    assert big.status_code == 413
    wrong = await client.post(f"{prefix}/smscommy/delivery?token={SECRET}&MsgId=1")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"
    assert (await client.get(f"{prefix}/nope?token={SECRET}")).status_code == 404
    assert recorder.events == []


async def test_a_duplicate_delivery_is_acknowledged_and_handled_once(
    served: tuple[httpx.AsyncClient, Recorder, str],
) -> None:
    client, recorder, prefix = served
    url = f"{prefix}/smscommy/delivery?token={SECRET}&MsgId=77&Status=6"
    answers = [await client.get(url) for _ in range(3)]
    posts = [
        await client.post(f"{prefix}/isms/whatsapp?token={SECRET}", content=whatsapp_form("w9"))
        for _ in range(2)
    ]
    assert [a.status_code for a in answers + posts] == [200] * 5
    assert len(recorder.events) == 2
    later = await client.get(f"{prefix}/smscommy/delivery?token={SECRET}&MsgId=77&Status=7")
    assert later.status_code == 200
    assert len(recorder.events) == 3  # a new status for the same message is news


async def test_a_failing_handler_is_500_logged_without_the_payload_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, recorder = receiver(fail=True, dedupe=MemoryDeduplicator())
    caplog.set_level(logging.DEBUG)
    async for client in client_for(app):
        first = await client.post(f"/isms/whatsapp?token={SECRET}", content=whatsapp_form())
        second = await client.post(f"/isms/whatsapp?token={SECRET}", content=whatsapp_form())
    assert (first.status_code, second.status_code) == (500, 500)
    assert len(recorder.events) == 2  # the claim was released: the gateway's retry is handled
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("messaging_async"))
    assert "RuntimeError" in ours
    assert OTP_TEXT not in ours
    assert SECRET not in ours


class RedisLikeStore:
    """A user's shared store, as with Redis: async, answering with plain strings."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def claim(self, key: str) -> str:
        if key in self.values:
            return self.values[key]
        self.values[key] = "in_progress"
        return "new"

    async def complete(self, key: str) -> None:
        self.values[key] = "done"

    async def release(self, key: str) -> None:
        self.values.pop(key, None)


async def test_a_users_async_store_gets_bounded_keys_and_settles_each_claim() -> None:
    store = RedisLikeStore()
    app, recorder = receiver(dedupe=store)
    long_id = "9" * 60_000
    async for client in client_for(app):
        answers = [
            await client.get(f"/isms/delivery?token={SECRET}&sms_id={long_id}&status=DELIVRD")
            for _ in range(2)
        ]
    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[1].text == "OK (duplicate)\n"
    assert len(recorder.events) == 1
    assert list(store.values.values()) == ["done"]
    assert max(len(key) for key in store.values) <= 200


@pytest.mark.parametrize(
    "dedupe",
    [lambda key: True, object(), type("OldStore", (), {"claim": lambda s, k: True})()],
    ids=["plain-callable", "nothing", "no-complete"],
)
def test_a_dedupe_without_the_three_methods_is_refused(dedupe: Any) -> None:
    """A store that only knows "seen" cannot say "still in progress": it would drop retries."""
    with pytest.raises(ValidationError, match="complete") as caught:
        WebhookReceiver(secret=SECRET, dedupe=dedupe)
    assert caught.value.field == "dedupe"


async def test_a_failing_store_is_503_and_the_handler_is_not_called() -> None:
    class Broken(RedisLikeStore):
        async def claim(self, key: str) -> str:
            raise ConnectionError("redis is down")

    app, recorder = receiver(dedupe=Broken())
    async for client in client_for(app):
        answer = await client.get(f"/isms/delivery?token={SECRET}&sms_id=1&status=DELIVRD")
    assert answer.status_code == 503
    assert answer.headers["retry-after"]
    assert recorder.events == []


async def test_ip_allow_list() -> None:
    app, recorder = receiver(allow_ips=["198.51.100.0/24", "2001:db8::1"])
    async for client in client_for(app, address="203.0.113.7"):
        assert (await client.get(f"/isms/delivery?token={SECRET}&sms_id=1")).status_code == 403
    async for client in client_for(app, address="198.51.100.20"):
        assert (await client.get(f"/isms/delivery?token={SECRET}&sms_id=1")).status_code == 200
    assert len(recorder.events) == 1


async def test_routes_without_a_handler_are_404_to_an_authenticated_caller() -> None:
    recorder = Recorder()
    app = WebhookReceiver(secret=SECRET, on_incoming_sms=recorder)
    async for client in client_for(app):
        assert (
            await client.post(f"/isms/whatsapp?token={SECRET}", content=whatsapp_form())
        ).status_code == 404
        assert (await client.get(f"/isms/delivery?token={SECRET}&sms_id=1")).status_code == 404
        assert (
            await client.get(f"/smscommy/incoming?token={SECRET}&Sender=6019&Msg=hi")
        ).status_code == 200


async def test_the_whatsapp_route_is_served_for_receipts_and_drops_messages_nobody_handles() -> (
    None
):
    """With ``on_delivery`` only, the WhatsApp route is served (receipts come through it,
    contract E9); a message there has no handler: acknowledged (200), not handled."""
    recorder = Recorder()
    app = WebhookReceiver(secret=SECRET, on_delivery=recorder)
    async for client in client_for(app):
        assert (
            await client.post(f"/isms/whatsapp?token={SECRET}", content=whatsapp_form())
        ).status_code == 200
        assert (await client.get(f"/isms/delivery?token={SECRET}&sms_id=1")).status_code == 200
    assert [type(event) for event in recorder.events] == [DeliveryReport]


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="16 characters"):
        WebhookReceiver(secret="short")


async def test_lifespan_is_answered() -> None:
    app, _ = receiver()
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


# ---------------------------------------------------------------- token first
@pytest.mark.parametrize(
    ("method", "path", "authenticated"),
    [
        ("GET", "/nope", 404),
        ("GET", "/isms", 404),
        ("POST", "/smscommy/delivery", 405),
        ("DELETE", "/isms/delivery", 405),
        ("POST", "/isms/whatsapp", 400),  # served for receipts; "x=1" holds no response
    ],
)
async def test_without_the_token_every_request_is_401_whatever_its_path_or_method(
    method: str, path: str, authenticated: int
) -> None:
    recorder = Recorder()
    app = WebhookReceiver(secret=SECRET, on_delivery=recorder, on_incoming_sms=recorder)
    async for client in client_for(app):
        for query in ("", "?token=wrong", f"?token={SECRET}x", "?token=%ZZ&MsgId=%ZZ"):
            answer = await client.request(method, path + query, content=b"x=1")
            assert answer.status_code == 401, (method, path, query)
            assert "allow" not in answer.headers
        known = await client.request(method, f"{path}?token={SECRET}", content=b"x=1")
    assert known.status_code == authenticated
    assert recorder.events == []


async def test_a_malformed_query_is_400_once_the_token_is_right() -> None:
    app, recorder = receiver()
    async for client in client_for(app):
        bad = await client.get(f"/isms/delivery?token={SECRET}&sms_id=%ZZ&status=DELIVRD")
        good = await client.get(f"/isms/delivery?%74oken={SECRET}&sms_id=%41&status=DELIVRD")
    assert (bad.status_code, good.status_code) == (400, 200)
    assert [event.message_id for event in recorder.events] == ["A"]
    assert "token" not in recorder.events[0].raw


# ---------------------------------------------------------------- over a real socket
DELIVERY = f"/smscommy/delivery?token={SECRET}&MsgId=77&Status=6"


async def test_a_retry_while_the_first_is_handled_is_503_and_a_failed_first_is_handled_again() -> (
    None
):
    started, finish = anyio.Event(), anyio.Event()
    calls: list[DeliveryReport] = []

    async def on_delivery(report: DeliveryReport) -> None:
        calls.append(report)
        if len(calls) == 1:
            started.set()
            await finish.wait()
            raise RuntimeError("the database went away")

    app = WebhookReceiver(secret=SECRET, on_delivery=on_delivery, dedupe=MemoryDeduplicator())
    answers: list[httpx.Response] = []
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        async with anyio.create_task_group() as tasks:

            async def first() -> None:
                answers.append(await http.get(DELIVERY))

            tasks.start_soon(first)
            await started.wait()
            during = await http.get(DELIVERY)
            finish.set()
        after_failure = await http.get(DELIVERY)
        after_success = await http.get(DELIVERY)
    assert during.status_code == 503
    assert int(during.headers["retry-after"]) > 0
    assert answers[0].status_code == 500
    assert (after_failure.status_code, after_failure.text) == (200, "OK\n")
    assert (after_success.status_code, after_success.text) == (200, "OK (duplicate)\n")
    assert len(calls) == 2


async def test_a_retry_while_the_first_is_handled_is_not_acknowledged_until_it_completes() -> None:
    started, finish = anyio.Event(), anyio.Event()
    calls: list[DeliveryReport] = []

    async def on_delivery(report: DeliveryReport) -> None:
        calls.append(report)
        started.set()
        await finish.wait()

    app = WebhookReceiver(secret=SECRET, on_delivery=on_delivery, dedupe=MemoryDeduplicator())
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(http.get, DELIVERY)
            await started.wait()
            during = await http.get(DELIVERY)
            finish.set()
        after = await http.get(DELIVERY)
    assert during.status_code == 503
    assert after.text == "OK (duplicate)\n"
    assert len(calls) == 1


@pytest.mark.parametrize("handler_timeout", [None, 30.0])
async def test_a_handler_cancelled_by_a_server_shutdown_releases_its_claim(
    handler_timeout: float | None,
) -> None:
    """uvicorn cancels a request still running after its graceful-shutdown time; the
    gateway got no answer and retries, and the retry must be handled, not acknowledged.
    With a time limit too: that cancellation is not the limit's, and is not swallowed."""
    started = anyio.Event()
    app, calls = first_report_hangs(handler_timeout, started)
    first: list[int] = []
    async with (
        httpx.AsyncClient(timeout=30) as http,
        anyio.create_task_group() as tasks,
        serve(app) as url,
    ):

        async def gateway_call() -> None:
            try:
                first.append((await http.get(url + DELIVERY)).status_code)
            except httpx.TransportError:
                first.append(0)  # the connection was dropped

        tasks.start_soon(gateway_call)
        await started.wait()
    # serve() has shut the server down, cancelling the handler
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        retry = await http.get(DELIVERY)
    assert first
    assert first[0] != 200
    assert (retry.status_code, retry.text) == (200, "OK\n")
    assert len(calls) == 2


async def test_a_handler_past_its_time_limit_is_503_and_its_claim_released(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, calls = first_report_hangs(0.5)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        slow = await http.get(DELIVERY)
        retry = await http.get(DELIVERY)
    assert slow.status_code == 503
    assert slow.headers["retry-after"]
    assert (retry.status_code, retry.text) == (200, "OK\n")
    assert len(calls) == 2
    assert "ran past 0.5 s" in caplog.text


async def test_a_body_that_trickles_in_is_cut_off_with_408() -> None:
    """A raw socket sends the headers, then one byte of the body at a time, slowly."""
    app, recorder = receiver(body_timeout=1.0)
    head = (
        f"POST /isms/whatsapp?token={SECRET} HTTP/1.1\r\nHost: hooks\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\n"
    ).encode()
    async with serve(app) as url:
        port = int(url.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(head)

            async def trickle() -> None:
                with contextlib.suppress(anyio.BrokenResourceError, OSError):
                    for byte in whatsapp_form():
                        await stream.send(bytes([byte]))
                        await anyio.sleep(0.05)

            answer = b""
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(trickle)
                with anyio.fail_after(20):
                    while b"\r\n\r\n" not in answer:
                        answer += await stream.receive()
                tasks.cancel_scope.cancel()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer.lower()
    assert recorder.events == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("body_timeout", 0),
        ("handler_timeout", -1.0),
        ("handler_timeout", float("nan")),
        ("body_timeout", "5"),
    ],
)
def test_time_limits_must_be_positive_numbers(name: str, value: object) -> None:
    settings: dict[str, Any] = {name: value}
    with pytest.raises(ValidationError) as caught:
        WebhookReceiver(secret=SECRET, **settings)
    assert caught.value.field == name


# ---------------------------------------------------------------- MemoryDeduplicator
def test_memory_deduplicator_states_and_bound() -> None:
    dedupe = MemoryDeduplicator(max_keys=3)
    assert dedupe.claim("a") is Claim.NEW
    assert dedupe.claim("a") is Claim.IN_PROGRESS
    dedupe.complete("a")
    assert dedupe.claim("a") is Claim.DONE
    assert dedupe.claim("b") is Claim.NEW
    dedupe.release("b")
    assert dedupe.claim("b") is Claim.NEW
    for key in "cdef":
        assert dedupe.claim(key) is Claim.NEW
        dedupe.complete(key)
    assert dedupe.claim("a") is Claim.NEW  # the oldest done keys were forgotten
    assert dedupe.claim("b") is Claim.IN_PROGRESS  # a claim in progress is never evicted
    assert dedupe.claim("f") is Claim.DONE


def test_memory_deduplicator_memory_does_not_grow_with_key_length() -> None:
    dedupe = MemoryDeduplicator()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(20):
            key = f"{number:02d}" * 500_000  # 1 MB each
            dedupe.claim(key)
            dedupe.complete(key)
            del key
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(dedupe) == 20
    assert held < 100_000  # 20 MB of keys, a few KB of digests


# ---------------------------------------------------------------- access logs
async def test_the_access_log_filter_keeps_hook_paths_out_of_uvicorns_access_log() -> None:
    records: list[str] = []
    api = FastAPI()
    api.get("/health")(lambda: {"ok": True})
    app, _ = receiver()
    api.mount("/hooks", app)
    access = logging.getLogger("uvicorn.access")
    keep = _Keep(records)
    hide = AccessLogFilter("/hooks")
    async with (
        serve(api, access_log=True) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        level = access.level
        access.setLevel(logging.INFO)  # serve() starts uvicorn at WARNING: turn it on
        access.addHandler(keep)
        access.addFilter(hide)
        try:
            hook = await http.get(f"/hooks/smscommy/incoming?token={SECRET}&Sender=6019&Msg=hi")
            health = await http.get("/health")
        finally:
            access.removeFilter(hide)
            access.removeHandler(keep)
            access.setLevel(level)
    assert (hook.status_code, health.status_code) == (200, 200)
    assert any("/health" in line for line in records)
    assert not any("/hooks" in line or SECRET in line for line in records)


async def test_the_demo_keeps_its_webhook_server_out_of_the_access_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Even with uvicorn's access log on, no line of the demo names a hook path."""
    records: list[str] = []
    configure = uvicorn.Config.configure_logging
    access = logging.getLogger("uvicorn.access")
    keep = _Keep(records)

    def access_log_on(self: uvicorn.Config) -> None:
        configure(self)
        access.setLevel(logging.INFO)
        access.addHandler(keep)

    monkeypatch.setattr(uvicorn.Config, "configure_logging", access_log_on)
    try:
        code = await run_demo(recipients=20, out=io.StringIO())
    finally:
        turned_on = keep in access.handlers  # uvicorn configured its logging: the log was on
        access.removeHandler(keep)
        access.setLevel(logging.WARNING)
    assert code == 0
    assert turned_on
    assert not any("/isms/" in line or "/smscommy/" in line for line in records)


class _Keep(logging.Handler):
    def __init__(self, lines: list[str]):
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_time_limits_and_claims_work_on_trio_too() -> None:
    """The receiver uses anyio only: a handler past its limit is cut off on trio as well."""
    app, calls = first_report_hangs(0.2)

    async def gateway() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as client:
            return [(await client.get(DELIVERY)).status_code for _ in range(3)]

    assert anyio.run(gateway, backend="trio") == [503, 200, 200]
    assert len(calls) == 2
