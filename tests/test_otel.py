"""OpenTelemetryHooks against the OpenTelemetry SDK's in-memory exporter and reader."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from messaging_async import RetryPolicy, Sms
from messaging_async.hooks import (
    AttemptEvent,
    BaseHooks,
    OutcomeEvent,
    RetryEvent,
    ThrottleEvent,
    WebhookEvent,
)
from messaging_async.otel import OpenTelemetryHooks
from messaging_async.testing import FakeGateway, Fault


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.hooks = OpenTelemetryHooks(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def points(self) -> dict[str, list[Any]]:
        """Metric name → its data points."""
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def every_attribute_value(self) -> list[str]:
        values = [
            str(v)
            for span in self.spans.get_finished_spans()
            for v in (span.attributes or {}).values()
        ]
        for span in self.spans.get_finished_spans():
            for event in span.events:
                values += [str(v) for v in (event.attributes or {}).values()]
        for points in self.points().values():
            for point in points:
                values += [str(v) for v in point.attributes.values()]
        return values


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    made = Telemetry()
    yield made
    made.tracer_provider.shutdown()
    made.meter_provider.shutdown()


def test_an_attempt_becomes_a_client_span_and_a_duration(telemetry: Telemetry) -> None:
    telemetry.hooks.on_attempt(
        AttemptEvent(
            gateway="isms",
            host="www.isms.com.my",
            endpoint="isms_send_json.php",
            attempt=2,
            duration=0.25,
            status=200,
            may_have_left=True,
            messages=50,
        )
    )
    (span,) = telemetry.spans.get_finished_spans()
    assert span.name == "messaging.request"
    assert dict(span.attributes or {}) == {
        "messaging.system": "isms",
        "server.address": "www.isms.com.my",
        "url.path": "isms_send_json.php",
        "http.response.status_code": 200,
        "messaging.attempt": 2,
        "messaging.batch.message_count": 50,
        "messaging.may_have_left": True,
    }
    assert span.end_time is not None
    assert span.start_time is not None
    assert span.end_time - span.start_time == pytest.approx(250_000_000, abs=1_000)
    (point,) = telemetry.points()["messaging.request.duration"]
    assert point.count == 1
    assert point.sum == pytest.approx(0.25)
    assert dict(point.attributes)["http.response.status_code"] == 200


def test_a_failed_attempt_is_an_error_span_with_its_kind(telemetry: Telemetry) -> None:
    telemetry.hooks.on_attempt(
        AttemptEvent(
            gateway="smscommy",
            host="sms.example",
            endpoint="api/send",
            attempt=1,
            duration=5.0,
            failure="connect",
            may_have_left=False,
        )
    )
    (span,) = telemetry.spans.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes is not None
    assert span.attributes["error.type"] == "connect"
    assert "http.response.status_code" not in span.attributes


def test_outcomes_count_messages_by_gateway_and_outcome(telemetry: Telemetry) -> None:
    for status, code in [("accepted", 2000), ("accepted", 2000), ("rejected", -1008)]:
        telemetry.hooks.on_outcome(OutcomeEvent(gateway="isms", status=status, code=code))
    telemetry.hooks.on_outcome(OutcomeEvent(gateway="isms", status="unknown"))
    counts = {
        (
            dict(p.attributes)["messaging.outcome"],
            dict(p.attributes).get("messaging.gateway.code"),
        ): p.value
        for p in telemetry.points()["messaging.messages"]
    }
    assert counts == {("accepted", "2000"): 2, ("rejected", "-1008"): 1, ("unknown", None): 1}


def test_retries_pauses_and_webhooks_are_counted(telemetry: Telemetry) -> None:
    hooks = telemetry.hooks
    hooks.on_retry(
        RetryEvent(
            gateway="isms", host="h", endpoint="e", kind="failover", reason="connect", attempt=1
        )
    )
    hooks.on_throttle(ThrottleEvent(gateway="isms", host="h", endpoint="e", status=429, pause=1.0))
    hooks.on_webhook(WebhookEvent(kind="isms_delivery", status=200, duration=0.002))
    points = telemetry.points()
    (retry,) = points["messaging.retries"]
    assert dict(retry.attributes)["messaging.retry.kind"] == "failover"
    (pause,) = points["messaging.throttle.pauses"]
    assert pause.value == 1
    (pause_seconds,) = points["messaging.throttle.pause.duration"]
    assert pause_seconds.sum == pytest.approx(1.0)
    (callback,) = points["messaging.webhook.callbacks"]
    assert dict(callback.attributes) == {
        "messaging.webhook.kind": "isms_delivery",
        "http.response.status_code": 200,
    }


def test_retry_and_throttle_are_events_on_the_callers_span(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("POST /otp"):
        telemetry.hooks.on_throttle(
            ThrottleEvent(gateway="isms", host="h", endpoint="e", status=503, pause=2.0)
        )
    (span,) = telemetry.spans.get_finished_spans()
    (event,) = span.events
    assert event.name == "messaging.throttle"
    assert dict(event.attributes or {})["messaging.pause"] == 2.0


async def test_a_client_with_otel_hooks_records_no_secret_text_or_number(
    telemetry: Telemetry, sandbox: tuple[FakeGateway, str]
) -> None:
    fake, url = sandbox
    fake.inject(Fault.THROTTLED, endpoint="isms_send_json.php", times=1, delay=1)
    retry = RetryPolicy(backoff_initial=0.01, max_elapsed=30)
    texts = ["Your OTP is 771234", "Hi Ahmad, your parcel is here"]
    numbers = ["60123456789", "60198765432"]
    async with fake.isms_client(base_url=url, hooks=telemetry.hooks, retry=retry) as client:
        await client.send_sms(numbers[0], texts[0])
        await client.send_sms_bulk([Sms(to=numbers[1], text=texts[1])])
    spans = telemetry.spans.get_finished_spans()
    assert [dict(s.attributes or {}).get("http.response.status_code") for s in spans] == [
        429,
        200,
        200,
    ]
    points = telemetry.points()
    (accepted,) = points["messaging.messages"]
    assert accepted.value == 2
    assert dict(accepted.attributes) == {
        "messaging.system": "isms",
        "messaging.outcome": "accepted",
        "messaging.gateway.code": "2000",
    }
    assert sum(p.value for p in points["messaging.throttle.pauses"]) == 1
    values = " ".join(telemetry.every_attribute_value())
    for secret in [fake.password, fake.username, fake.app_secret, *texts, *numbers, "771234"]:
        assert secret not in values


def test_a_hook_that_raises_never_breaks_a_send(
    sandbox: tuple[FakeGateway, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = sandbox

    class Broken(BaseHooks):
        def on_attempt(self, event: AttemptEvent) -> None:
            raise RuntimeError("attempt hook bug")

        def on_outcome(self, event: OutcomeEvent) -> None:
            raise RuntimeError("outcome hook bug")

    async def main() -> None:
        async with fake.isms_client(base_url=url, hooks=Broken()) as client:
            await client.send_sms("60123456789", "still sent")
            report = await client.send_sms_bulk([Sms(to="60198765432", text="also sent")])
            assert report.all_accepted

    with caplog.at_level(logging.ERROR, logger="messaging_async.hooks"):
        anyio.run(main)
    assert len(fake.sent) == 2
    failures = [r.getMessage() for r in caplog.records if r.name == "messaging_async.hooks"]
    assert sorted(failures) == sorted(
        [f"hook Broken.{method} failed; ignored" for method in ("on_attempt", "on_outcome")] * 2
    )
