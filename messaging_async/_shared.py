"""What a client's transport shares with its ``with_options`` copies: the connections (the
exchange), the slots, the hosts cooling down, the throttle pause, the hooks, the door
``aclose()`` shuts."""

from __future__ import annotations

from typing import Any

import httpx
from attrs import define, field

from ._connections import HTTP_BACKENDS, Network
from ._exchange import AiohttpExchange, Exchange, HttpxExchange
from ._gate import Gate
from ._limiter import Lanes, ThrottlePause
from ._observe import Observer
from .errors import ValidationError

__all__ = ["Shared", "make_exchange"]


def make_exchange(
    backend: str,
    transport: httpx.AsyncBaseTransport | None,
    timeout: httpx.Timeout,
    max_connections: int,
    keepalive_expiry: float,
    network: Network,
) -> Exchange:
    if backend not in HTTP_BACKENDS:
        raise ValidationError(
            f"http_backend must be one of {', '.join(HTTP_BACKENDS)}", field="http_backend"
        )
    if transport is not None:  # the caller's: used as given, never closed by us
        if backend != "httpx":
            raise ValidationError(
                "transport= takes an httpx transport; it cannot be combined with "
                f"http_backend={backend!r}",
                field="http_backend",
            )
        return HttpxExchange([(transport, max_connections)], timeout, owned=False)
    if backend == "aiohttp":
        return AiohttpExchange(max_connections, timeout, keepalive_expiry, network)
    return HttpxExchange.pooled(max_connections, timeout, keepalive_expiry, network)


@define
class Shared:
    """What every client made by ``with_options`` shares with the one it came from: the
    connections, the slots, the hosts cooling down, the throttle pause, the hooks."""

    exchange: Exchange
    backend: str
    lanes: Lanes
    pause: ThrottlePause
    observer: Observer
    cooling_until: dict[str, float]
    gate: Gate = field(factory=Gate)
    owner: Any = None  # the Transport that made the connections and closes them
