"""The rate limit a client keeps: messages and requests per second, with a burst.

Gateways throttle (HTTP 429) or quietly drop traffic above what an account may send; a
limit kept on our side spends no attempt on a refusal. Messages are counted per recipient
(a request to 50 numbers is 50 messages), requests per HTTP attempt.
"""

from __future__ import annotations

import math
from typing import Any

from attrs import Attribute, field, frozen

from .errors import ValidationError

__all__ = ["RateLimit"]


def _rate(instance: object, attribute: Attribute[Any], value: Any) -> None:
    name = attribute.name
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a positive number or None", field=name)
    if value <= 0:
        raise ValidationError(f"{name} must be a positive number or None", field=name)


def _burst(instance: object, attribute: Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError("burst must be an int of at least 1, or None", field="burst")


@frozen(kw_only=True)
class RateLimit:
    """How fast a client may send; frozen, so one limit can be given to many clients (each
    client keeps its own count).

    - ``messages_per_second``: recipients per second, over bulk and single sends alike.
    - ``requests_per_second``: HTTP requests per second (retries and look-ups included).
    - ``burst``: how many messages (and requests) may go at once after a quiet spell; in
      any window of ``w`` seconds at most ``rate * w + burst`` go. ``None`` (the default)
      means a fifth of a second's worth, at least 1: 100 at 500 messages a second. A bulk
      request carries at most half the burst, so the other half absorbs late wake-ups
      instead of losing them to drift, and at most a twentieth of a second's worth (at
      least 1), so requests delayed on their way by up to 50 ms still reach the gateway
      within 5% of the rate: 25 recipients a request at 500 a second.

    ``None`` for a rate means no limit on that count.
    """

    messages_per_second: float | None = field(default=None, validator=_rate)
    requests_per_second: float | None = field(default=None, validator=_rate)
    burst: int | None = field(default=None, validator=_burst)

    def __attrs_post_init__(self) -> None:
        if self.messages_per_second is None and self.requests_per_second is None:
            raise ValidationError(
                "a RateLimit needs messages_per_second, requests_per_second or both",
                field="messages_per_second",
            )

    def burst_for(self, rate: float) -> int:
        """The burst that applies to a count kept at ``rate`` per second."""
        if self.burst is not None:
            return self.burst
        return max(1, math.ceil(rate / 5))

    @property
    def max_messages_per_request(self) -> int | None:
        """The most recipients one request may carry and still keep the per-message bound."""
        if self.messages_per_second is None:
            return None
        rate = self.messages_per_second
        return max(1, min(self.burst_for(rate) // 2, math.floor(rate / 20)))
