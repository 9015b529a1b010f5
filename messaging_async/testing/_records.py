"""What the sandbox records and how it can be told to misbehave."""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any

from attrs import define, field, frozen

__all__ = ["Fault", "FaultRule", "SentMessage", "SimulatedAnswer"]


class Fault(enum.Enum):
    """A way the sandbox fails one request. ``processes`` says whether the gateway acts on
    the request before failing (the case that makes an outcome ``unknown``)."""

    REFUSE = ("refuse", False)
    """Connection refused (in process; over a socket, use a closed port)."""
    HANG = ("hang", True)
    """Processes, then never answers: the client's read timeout fires."""
    RESET = ("reset", True)
    """Processes, then drops the connection mid-answer."""
    SERVER_ERROR = ("server_error", False)
    """A 502 HTML page from a proxy in front of the gateway."""
    UNAVAILABLE = ("unavailable", False)
    """A 503 HTML page: the gateway is down for maintenance."""
    TRUNCATED = ("truncated", True)
    """Processes, then the answer arrives cut in half."""
    NOT_JSON = ("not_json", False)
    """A plain-text maintenance page in place of an answer."""
    SLOW = ("slow", True)
    """Processes and answers after ``delay`` seconds."""
    CODE = ("code", False)
    """Answers the given gateway ``code`` without processing the request."""
    THROTTLED = ("throttled", False)
    """HTTP 429 with ``Retry-After: <delay>`` (whole seconds, rounded up): not processed."""
    CLOSE = ("close", True)
    """Processes, then drops the connection before a single byte of answer (no HTTP
    status at all): the worst case, the gateway acted and the client cannot know. In
    process: ``httpx.RemoteProtocolError``; served by anything but uvicorn: as ``RESET``."""
    IDLE_CLOSE = ("idle_close", True)
    """Answers normally, then closes the connection once it has sat idle ``delay`` seconds,
    as servers' keep-alive timeouts do (Apache: 5 s). Only over a socket; no effect in
    process. A request racing the close is not processed."""

    def __init__(self, label: str, processes: bool):
        self.label = label
        self.processes = processes


@define
class FaultRule:
    fault: Fault
    endpoint: str | None = None
    host: str | None = None
    times: int | None = 1
    delay: float = 0.5
    code: int | str | None = None

    def matches(self, endpoint: str, host: str) -> bool:
        return (self.endpoint is None or endpoint.endswith(self.endpoint)) and (
            self.host is None or host == self.host
        )


@frozen(kw_only=True)
class SentMessage:
    """One message the sandbox accepted. ``gateway`` is ``isms``, ``whatsapp`` or ``smscommy``;
    ``endpoint`` the path it came in on; ``text`` the decoded text (hex undone)."""

    gateway: str
    endpoint: str
    to: str
    message_id: str
    type: str
    text: str | None = field(default=None, repr=False)
    sender: str | None = None
    seqno: str | None = None
    template: str | None = None
    params: dict[str, Any] | None = field(default=None, repr=False)
    file_url: str | None = None
    credits: Decimal = Decimal(1)
    at: float = 0.0


@frozen
class SimulatedAnswer:
    """What the sandbox answers: HTTP status, content type and body."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
