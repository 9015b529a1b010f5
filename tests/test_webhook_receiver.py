"""WebhookReceiver: auth, errors, de-duplication, IP allow-list; plain and inside FastAPI."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI

from messaging_async import (
    DeliveryReport,
    DeliveryStatus,
    IncomingSms,
    ValidationError,
    WebhookReceiver,
    WhatsAppInbound,
)
from messaging_async.webhooks import MemoryDeduplicator

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
    app = WebhookReceiver(secret=SECRET, on_delivery=recorder)
    async for client in client_for(app):
        assert (
            await client.post(f"/isms/whatsapp?token={SECRET}", content=whatsapp_form())
        ).status_code == 404
        assert (await client.get(f"/isms/delivery?token={SECRET}&sms_id=1")).status_code == 200


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
