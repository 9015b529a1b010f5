"""Turning what the transport and the bulk road see into hook events.

One ``Observer`` per client: it knows the gateway's name and the hooks, builds the events
(hosts and paths only; no text, secret or number can reach it) and costs one ``None``
check when there are no hooks.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from urllib.parse import urlsplit

from .hooks import (
    AttemptEvent,
    CompositeHooks,
    OutcomeEvent,
    RetryEvent,
    ThrottleEvent,
)
from .models import Outcome

__all__ = ["Observer", "failure_kind", "host_of"]

# Exception class names (httpx's and aiohttp's, by MRO) → the failure kinds hooks report.
_KINDS = (
    ("ProxyError", "proxy"),
    ("ClientProxyConnectionError", "proxy"),
    ("ClientSSLError", "tls"),
    ("TimeoutException", "timeout"),
    ("ServerTimeoutError", "timeout"),
    ("ConnectionTimeoutError", "timeout"),
    ("TimeoutError", "timeout"),
    ("ConnectError", "connect"),
    ("ClientConnectorError", "connect"),
    ("RemoteProtocolError", "protocol"),
    ("ServerDisconnectedError", "reset"),
    ("ReadError", "reset"),
    ("WriteError", "reset"),
    ("ClientOSError", "reset"),
    ("ClientPayloadError", "protocol"),
    ("LocalProtocolError", "protocol"),
    ("UnsupportedProtocol", "protocol"),
)


def failure_kind(exc: BaseException | None) -> str:
    """``connect``, ``timeout``, ``reset``, ``proxy``, ``tls``, ``protocol`` or ``other``."""
    if exc is None:
        return "other"
    cause: BaseException | None = exc
    while cause is not None:  # a TLS failure hides inside httpx's ConnectError
        if isinstance(cause, ssl.SSLError):
            return "tls"
        cause = cause.__cause__ or cause.__context__
    names = {cls.__name__ for cls in type(exc).__mro__}
    for name, kind in _KINDS:
        if name in names:
            return kind
    return "other"


def host_of(base_url: str) -> str:
    return urlsplit(base_url).netloc


class Observer:
    """Events for one client's hooks; every method is a no-op without hooks."""

    def __init__(self, gateway: str, hooks: CompositeHooks | None):
        self.gateway = gateway
        self.hooks = hooks

    def attempt(
        self,
        base_url: str,
        endpoint: str,
        attempt: int,
        duration: float,
        *,
        status: int | None = None,
        failure: str | None = None,
        may_have_left: bool,
        messages: int,
    ) -> None:
        if self.hooks is None:
            return
        self.hooks.on_attempt(
            AttemptEvent(
                gateway=self.gateway,
                host=host_of(base_url),
                endpoint=endpoint,
                attempt=attempt,
                duration=duration,
                status=status,
                failure=failure,
                may_have_left=may_have_left,
                messages=messages,
            )
        )

    def retry(
        self, base_url: str, endpoint: str, *, kind: str, reason: str, attempt: int, delay: float
    ) -> None:
        if self.hooks is None:
            return
        self.hooks.on_retry(
            RetryEvent(
                gateway=self.gateway,
                host=host_of(base_url),
                endpoint=endpoint,
                kind=kind,
                reason=reason,
                attempt=attempt,
                delay=delay,
            )
        )

    def throttle(self, base_url: str, endpoint: str, status: int, pause: float) -> None:
        if self.hooks is None:
            return
        self.hooks.on_throttle(
            ThrottleEvent(
                gateway=self.gateway,
                host=host_of(base_url),
                endpoint=endpoint,
                status=status,
                pause=pause,
            )
        )

    def outcomes(self, outcomes: Iterable[Outcome]) -> None:
        if self.hooks is None:
            return
        for outcome in outcomes:
            self.hooks.on_outcome(
                OutcomeEvent(gateway=self.gateway, status=outcome.status.value, code=outcome.code)
            )
