"""Observability hooks: counts, outcomes and latencies without parsing logs.

Give a client (or a ``WebhookReceiver``) ``hooks=`` an object with these methods; subclass
``BaseHooks`` to implement only some of them. Each is called synchronously in the task
that sent the request, so a tracing context the caller set (a request handler's span) is
current. The ``[otel]`` extra has one that records OpenTelemetry spans and metrics:
``messaging_async.otel.OpenTelemetryHooks``.

What an event never carries: message texts, template parameters, passwords, app secrets
or phone numbers, not even masked ones. Hosts and endpoint paths are the base URLs' (no
credential is ever in a URL: requests go as POST bodies).

A hook that raises is logged (``messaging_async.hooks``) and otherwise ignored: watching a
send never breaks it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from attrs import frozen

from .errors import ValidationError

__all__ = [
    "AttemptEvent",
    "BaseHooks",
    "CompositeHooks",
    "Hooks",
    "OutcomeEvent",
    "RetryEvent",
    "ThrottleEvent",
    "WebhookEvent",
    "combine_hooks",
]

logger = logging.getLogger("messaging_async.hooks")


@frozen(kw_only=True)
class AttemptEvent:
    """One HTTP attempt, answered or not.

    ``status`` is the HTTP status when an answer came; ``failure`` otherwise says how the
    attempt failed (``connect``, ``timeout``, ``reset``, ``proxy``, ``tls``, ``protocol``,
    ``other``). ``may_have_left``: the request may have reached the gateway. ``messages``:
    recipients the request carried (0 for a look-up).
    """

    gateway: str
    host: str
    endpoint: str
    attempt: int
    duration: float
    status: int | None = None
    failure: str | None = None
    may_have_left: bool = True
    messages: int = 0


@frozen(kw_only=True)
class OutcomeEvent:
    """One recipient's outcome: ``status`` is an ``OutcomeStatus`` value, ``code`` the
    gateway's code, if it gave one."""

    gateway: str
    status: str
    code: int | None = None


@frozen(kw_only=True)
class RetryEvent:
    """A request tried again: ``kind`` is ``failover`` (the next base URL at once, nothing
    was sent) or ``retry`` (a new round after ``delay`` seconds); ``reason`` the failure
    kind or ``http_<status>`` that caused it."""

    gateway: str
    host: str
    endpoint: str
    kind: str
    reason: str
    attempt: int
    delay: float = 0.0


@frozen(kw_only=True)
class ThrottleEvent:
    """The gateway answered ``status`` (429, or 503 with ``Retry-After``) and every send of
    the client pauses for ``pause`` seconds. Called once per pause, not per task."""

    gateway: str
    host: str
    endpoint: str
    status: int
    pause: float


@frozen(kw_only=True)
class WebhookEvent:
    """A callback the receiver handled: ``kind`` (``isms_delivery``, ``smscommy_incoming``…),
    the HTTP ``status`` it answered, and ``duration`` in seconds."""

    kind: str
    status: int
    duration: float


@runtime_checkable
class Hooks(Protocol):
    """What ``hooks=`` takes. Every method returns nothing and should return quickly."""

    def on_attempt(self, event: AttemptEvent) -> None: ...

    def on_outcome(self, event: OutcomeEvent) -> None: ...

    def on_retry(self, event: RetryEvent) -> None: ...

    def on_throttle(self, event: ThrottleEvent) -> None: ...

    def on_webhook(self, event: WebhookEvent) -> None: ...


class BaseHooks:
    """Hooks that do nothing: subclass and override the events you want."""

    def on_attempt(self, event: AttemptEvent) -> None:
        """Called after every HTTP attempt."""

    def on_outcome(self, event: OutcomeEvent) -> None:
        """Called once per recipient, with its final outcome."""

    def on_retry(self, event: RetryEvent) -> None:
        """Called before a failover or a retry round."""

    def on_throttle(self, event: ThrottleEvent) -> None:
        """Called when a throttle pause starts."""

    def on_webhook(self, event: WebhookEvent) -> None:
        """Called after each webhook callback."""


class CompositeHooks(BaseHooks):
    """Several hooks called in turn; one that raises is logged and the others still run."""

    def __init__(self, hooks: Sequence[Hooks]):
        self.hooks = tuple(hooks)

    def __repr__(self) -> str:
        return f"CompositeHooks({', '.join(type(hook).__name__ for hook in self.hooks)})"

    def _call(self, name: str, event: object) -> None:
        for hook in self.hooks:
            try:
                getattr(hook, name)(event)
            except Exception:
                logger.exception("hook %s.%s failed; ignored", type(hook).__name__, name)

    def on_attempt(self, event: AttemptEvent) -> None:
        self._call("on_attempt", event)

    def on_outcome(self, event: OutcomeEvent) -> None:
        self._call("on_outcome", event)

    def on_retry(self, event: RetryEvent) -> None:
        self._call("on_retry", event)

    def on_throttle(self, event: ThrottleEvent) -> None:
        self._call("on_throttle", event)

    def on_webhook(self, event: WebhookEvent) -> None:
        self._call("on_webhook", event)


def combine_hooks(hooks: Hooks | Sequence[Hooks] | None) -> CompositeHooks | None:
    """What a client keeps of its ``hooks=``: ``None`` when there are none, so the send path
    costs nothing without hooks; else one object that never raises."""
    if hooks is None:
        return None
    items = [hooks] if isinstance(hooks, Hooks) else hooks
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise ValidationError("hooks must be a Hooks object or a sequence of them", field="hooks")
    for item in items:
        if not isinstance(item, Hooks):
            raise ValidationError(
                f"hooks: {type(item).__name__} lacks the Hooks methods; subclass BaseHooks",
                field="hooks",
            )
    return CompositeHooks(items) if items else None
