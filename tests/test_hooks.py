"""The hook protocol: what an event may carry, combining hooks, and a hook that raises."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import httpx
import pytest

from messaging_async import ValidationError, WebhookReceiver
from messaging_async.hooks import (
    AttemptEvent,
    BaseHooks,
    CompositeHooks,
    Hooks,
    OutcomeEvent,
    RetryEvent,
    ThrottleEvent,
    WebhookEvent,
    combine_hooks,
)

EVENTS = (AttemptEvent, OutcomeEvent, RetryEvent, ThrottleEvent, WebhookEvent)


class Recorder(BaseHooks):
    def __init__(self) -> None:
        self.events: list[object] = []

    def on_attempt(self, event: AttemptEvent) -> None:
        self.events.append(event)

    def on_outcome(self, event: OutcomeEvent) -> None:
        self.events.append(event)

    def on_throttle(self, event: ThrottleEvent) -> None:
        self.events.append(event)


class Broken(BaseHooks):
    def on_attempt(self, event: AttemptEvent) -> None:
        raise RuntimeError("hook bug")


def test_no_event_has_a_field_for_texts_numbers_or_secrets() -> None:
    forbidden = {"text", "to", "number", "password", "secret", "params", "body", "url"}
    for event in EVENTS:
        names = {field.name for field in attrs.fields(event)}
        assert not names & forbidden, event


def test_a_hook_that_raises_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    hooks = combine_hooks([Broken(), recorder])
    assert hooks is not None
    event = AttemptEvent(
        gateway="isms", host="gw.example", endpoint="send.php", attempt=1, duration=0.1, status=200
    )
    with caplog.at_level(logging.ERROR, logger="messaging_async.hooks"):
        hooks.on_attempt(event)
    assert recorder.events == [event]
    assert "Broken.on_attempt failed" in caplog.text


def test_combine_hooks_accepts_one_many_or_none_and_refuses_others() -> None:
    one = Recorder()
    assert combine_hooks(None) is None
    assert combine_hooks([]) is None
    combined = combine_hooks(one)
    assert isinstance(combined, CompositeHooks)
    assert combined.hooks == (one,)
    assert isinstance(BaseHooks(), Hooks)
    with pytest.raises(ValidationError) as caught:
        combine_hooks([one, object()])  # type: ignore[list-item]
    assert caught.value.field == "hooks"
    with pytest.raises(ValidationError):
        combine_hooks("hooks")  # type: ignore[arg-type]


def test_every_method_reaches_every_hook() -> None:
    calls: list[tuple[str, str]] = []

    class Spy(BaseHooks):
        def __init__(self, name: str) -> None:
            self.name = name

        def __getattribute__(self, attribute: str) -> Any:
            if attribute.startswith("on_"):
                name = object.__getattribute__(self, "name")
                return lambda event: calls.append((name, attribute))
            return object.__getattribute__(self, attribute)

    hooks = combine_hooks([Spy("a"), Spy("b")])
    assert hooks is not None
    hooks.on_attempt(AttemptEvent(gateway="g", host="h", endpoint="e", attempt=1, duration=0.0))
    hooks.on_outcome(OutcomeEvent(gateway="g", status="accepted", code=2000))
    hooks.on_retry(
        RetryEvent(gateway="g", host="h", endpoint="e", kind="retry", reason="timeout", attempt=2)
    )
    hooks.on_throttle(ThrottleEvent(gateway="g", host="h", endpoint="e", status=429, pause=1.0))
    hooks.on_webhook(WebhookEvent(kind="isms_delivery", status=200, duration=0.01))
    methods = ["on_attempt", "on_outcome", "on_retry", "on_throttle", "on_webhook"]
    assert calls == [(name, method) for method in methods for name in ("a", "b")]


class WebhookRecorder(BaseHooks):
    def __init__(self) -> None:
        self.events: list[WebhookEvent] = []

    def on_webhook(self, event: WebhookEvent) -> None:
        self.events.append(event)


async def test_the_receiver_tells_hooks_each_callback_route_status_and_time() -> None:
    secret = "a-long-shared-secret-0123456789"
    hooks = WebhookRecorder()
    received: list[object] = []
    app = WebhookReceiver(secret=secret, on_delivery=received.append, hooks=hooks)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as client:
        query = {"token": secret, "dstno": "60123456789", "msgid": "m-1", "status": "DELIVRD"}
        await client.get("/isms/delivery", params=query)
        await client.get("/isms/delivery", params={"token": "wrong"})
        await client.get("/made-up/path", params={"token": secret})
    assert [(event.kind, event.status) for event in hooks.events] == [
        ("isms_delivery", 200),
        ("isms_delivery", 401),
        ("other", 404),
    ]
    assert all(0 <= event.duration < 5 for event in hooks.events)
    assert secret not in repr(hooks.events)
