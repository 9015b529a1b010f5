"""What every exchange shares: the reply, the failure, the protocol and the defaults."""

from __future__ import annotations

from typing import Protocol

from attrs import frozen

from .._connections import Network, shared_ssl_context
from .._version import __version__

__all__ = [
    "DEFAULT_KEEPALIVE_EXPIRY",
    "DIRECT",
    "USER_AGENT",
    "Exchange",
    "Phases",
    "Reply",
    "SendFailed",
    "describe",
]

USER_AGENT = f"messaging-async/{__version__}"


@frozen
class Reply:
    """The HTTP answer: status, body bytes, and the ``Retry-After`` header if there was one."""

    status: int
    body: bytes
    retry_after: str | None = None


class SendFailed(Exception):
    """No HTTP answer came back. ``never_sent``: the request certainly did not leave."""

    def __init__(self, description: str, *, never_sent: bool):
        super().__init__(description)
        self.never_sent = never_sent


class Exchange(Protocol):
    @property
    def closed(self) -> bool: ...

    async def post(
        self, url: str, content: bytes, content_type: str, phases: Phases | None = None
    ) -> Reply:
        """POST ``content``; the reply, or ``SendFailed``. ``phases`` replace the
        exchange's own phases for this request (a shorter per-call deadline)."""

    async def aclose(self) -> None: ...


# httpx's timeout phases as a dict (connect, read, write, pool → seconds or None).
Phases = dict[str, float | None]


DIRECT = Network(ssl_context=shared_ssl_context())

# Seconds an idle connection is kept for reuse. Servers close idle keep-alive connections
# on their own clock (Apache and uvicorn after 5 s, Node.js after 5 s, nginx after 75 s);
# a request sent on a connection the server is closing at that moment is lost, and being
# a POST that may have left, it cannot be resent. Staying clearly under the shortest common
# server timeout means we never race one; httpx's own default is 5 s, aiohttp's 15 s.
DEFAULT_KEEPALIVE_EXPIRY = 2.0


def describe(exc: BaseException) -> str:
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
