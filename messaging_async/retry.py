"""The retry policy: how hard the SDK tries before it reports ``not_sent`` or ``unknown``.

What may be retried is not a setting: a request that failed before it left (connection
refused, DNS, TLS) goes to the next base URL at once, because nothing was sent; one that
may have reached the gateway is only retried where a retry cannot send a message twice
(balance look-ups; sms.com.my sends, which carry a ``seqno``). ``allow_duplicate_sends``
is the one explicit exception, for callers who prefer a possible duplicate to a lost OTP.
"""

from __future__ import annotations

import math
import random
from typing import Any

from attrs import Attribute, field, frozen

from .errors import ValidationError

__all__ = ["RetryPolicy"]


@frozen(kw_only=True)
class RetryPolicy:
    """Bounds and pacing of retries; frozen, so one policy can be shared by many clients.

    - ``max_attempts``: HTTP attempts per logical request, across every base URL and round.
    - ``max_elapsed``: seconds after which no new attempt starts.
    - ``backoff_initial`` / ``backoff_max``: the pause between rounds doubles from the first
      to the second, with full jitter; a ``Retry-After`` header overrides it.
    - ``cooldown``: seconds a base URL that failed to connect is tried last, so later
      requests do not pay its connect timeout again.
    - ``wait``: ``False`` skips every pause (tests); bounds still apply.
    - ``allow_duplicate_sends``: resend an iSMS message whose first attempt may have
      reached the gateway. Off by default: it can deliver a message, and bill it, twice.
    """

    max_attempts: int = field(default=6, validator=lambda _, a, v: _check_attempts(a, v))
    max_elapsed: float = field(default=60.0, validator=lambda _, a, v: _check_seconds(a, v, 0.0))
    backoff_initial: float = field(default=0.5, validator=lambda _, a, v: _check_seconds(a, v))
    backoff_max: float = field(default=8.0, validator=lambda _, a, v: _check_seconds(a, v))
    cooldown: float = field(default=30.0, validator=lambda _, a, v: _check_seconds(a, v))
    wait: bool = field(default=True, validator=lambda _, a, v: _check_flag(a, v))
    allow_duplicate_sends: bool = field(default=False, validator=lambda _, a, v: _check_flag(a, v))

    def backoff(self, round_number: int, retry_after: float | None = None) -> float:
        """Seconds to pause before round ``round_number`` (1 = the first retry round)."""
        if not self.wait:
            return 0.0
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** (round_number - 1))
        return random.uniform(0.0, ceiling)  # noqa: S311 - jitter, not cryptography

    @classmethod
    def no_wait(cls, **overrides: object) -> RetryPolicy:
        """The default policy without pauses: for tests and the sandbox."""
        return cls(wait=False, **overrides)  # type: ignore[arg-type]


# Validators raise ValidationError naming the field, like every other bad setting: a
# TypeError from attrs would escape ``except MessagingError``. Bounds must be finite: an
# infinite or NaN pause never ends, and NaN compares false to every limit.


def _check_attempts(attribute: Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{attribute.name} must be an int, 1 or more", field=attribute.name)


def _check_seconds(attribute: Attribute[Any], value: object, above: float | None = None) -> None:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number < 0 or number == above:
        least = "greater than 0" if above is not None else "0 or more"
        raise ValidationError(
            f"{attribute.name} must be a finite number of seconds, {least}", field=attribute.name
        )


def _check_flag(attribute: Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError(f"{attribute.name} must be True or False", field=attribute.name)
