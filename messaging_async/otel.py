"""OpenTelemetry for the SDK's hooks (the ``[otel]`` extra: ``opentelemetry-api``).

``OpenTelemetryHooks`` turns every hook event into spans and metrics through the
providers the application configured (or the global ones):

- a span per HTTP attempt (``messaging.request``), child of whatever span was current in
  the sending task, with host, endpoint, attempt, status or failure kind;
- ``messaging.messages``: a counter of recipients by gateway and outcome;
- ``messaging.request.duration``: a histogram of attempts in seconds;
- ``messaging.retries`` by kind (retry, failover); ``messaging.throttle.pauses`` and
  ``messaging.throttle.pause.duration``;
- ``messaging.webhook.callbacks`` and ``messaging.webhook.duration`` by kind and status.

Attributes carry gateway names, hosts, paths, codes and counts: never a text, a template
parameter, a secret or a phone number (the events themselves carry none).
"""

from __future__ import annotations

import time
from typing import Any

try:
    from opentelemetry import metrics, trace
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "messaging_async.otel needs the otel extra: pip install 'messaging-async[otel]'"
    ) from exc

from ._version import __version__
from .hooks import (
    AttemptEvent,
    BaseHooks,
    OutcomeEvent,
    RetryEvent,
    ThrottleEvent,
    WebhookEvent,
)

__all__ = ["OpenTelemetryHooks"]

_SCOPE = "messaging_async"
_NS_PER_SECOND = 1_000_000_000


class OpenTelemetryHooks(BaseHooks):
    """Hooks recording OpenTelemetry spans and metrics; pass providers to use others than
    the global ones (tests, several pipelines)."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ):
        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self._messages = meter.create_counter(
            "messaging.messages", unit="{message}", description="Recipients by final outcome"
        )
        self._duration = meter.create_histogram(
            "messaging.request.duration", unit="s", description="HTTP attempts to a gateway"
        )
        self._retries = meter.create_counter(
            "messaging.retries", unit="{retry}", description="Failovers and retry rounds"
        )
        self._pauses = meter.create_counter(
            "messaging.throttle.pauses", unit="{pause}", description="Throttle pauses begun"
        )
        self._pause_seconds = meter.create_histogram(
            "messaging.throttle.pause.duration", unit="s", description="Throttle pauses asked"
        )
        self._callbacks = meter.create_counter(
            "messaging.webhook.callbacks", unit="{callback}", description="Webhook callbacks"
        )
        self._callback_duration = meter.create_histogram(
            "messaging.webhook.duration", unit="s", description="Webhook callback handling"
        )

    def on_attempt(self, event: AttemptEvent) -> None:
        attributes: dict[str, Any] = {
            "messaging.system": event.gateway,
            "server.address": event.host,
            "url.path": event.endpoint,
        }
        if event.status is not None:
            attributes["http.response.status_code"] = event.status
        if event.failure is not None:
            attributes["error.type"] = event.failure
        self._duration.record(event.duration, attributes)
        end = time.time_ns()
        span = self._tracer.start_span(
            "messaging.request",
            kind=trace.SpanKind.CLIENT,
            start_time=end - int(event.duration * _NS_PER_SECOND),
            attributes={
                **attributes,
                "messaging.attempt": event.attempt,
                "messaging.batch.message_count": event.messages,
                "messaging.may_have_left": event.may_have_left,
            },
        )
        if event.failure is not None or (event.status is not None and event.status >= 400):
            span.set_status(trace.StatusCode.ERROR, event.failure or f"HTTP {event.status}")
        span.end(end_time=end)

    def on_outcome(self, event: OutcomeEvent) -> None:
        attributes: dict[str, Any] = {
            "messaging.system": event.gateway,
            "messaging.outcome": event.status,
        }
        if event.code is not None:
            attributes["messaging.gateway.code"] = str(event.code)
        self._messages.add(1, attributes)

    def on_retry(self, event: RetryEvent) -> None:
        attributes: dict[str, Any] = {
            "messaging.system": event.gateway,
            "messaging.retry.kind": event.kind,
            "error.type": event.reason,
        }
        self._retries.add(1, attributes)
        _add_event("messaging.retry", {**attributes, "server.address": event.host})

    def on_throttle(self, event: ThrottleEvent) -> None:
        attributes: dict[str, Any] = {
            "messaging.system": event.gateway,
            "http.response.status_code": event.status,
        }
        self._pauses.add(1, attributes)
        self._pause_seconds.record(event.pause, attributes)
        _add_event("messaging.throttle", {**attributes, "messaging.pause": event.pause})

    def on_webhook(self, event: WebhookEvent) -> None:
        attributes: dict[str, Any] = {
            "messaging.webhook.kind": event.kind,
            "http.response.status_code": event.status,
        }
        self._callbacks.add(1, attributes)
        self._callback_duration.record(event.duration, attributes)


def _add_event(name: str, attributes: dict[str, Any]) -> None:
    """An event on the span current in the sending task (the caller's), if it records."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(name, attributes)
