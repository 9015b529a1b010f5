"""The retry policy: how hard the SDK tries before it reports ``not_sent`` or ``unknown``.

What may be retried is not a setting: a request that failed before it left (connection
refused, DNS, TLS) goes to the next base URL at once, because nothing was sent; one that
may have reached the gateway is only retried where a retry cannot send a message twice
(balance look-ups; sms.com.my sends, which carry a ``seqno``). ``allow_duplicate_sends``
is the one explicit exception, for callers who prefer a possible duplicate to a lost OTP.
"""

from __future__ import annotations

import random

from attrs import field, frozen, validators

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

    max_attempts: int = field(default=6, validator=[validators.instance_of(int), validators.gt(0)])
    max_elapsed: float = field(default=60.0, validator=validators.gt(0.0))
    backoff_initial: float = field(default=0.5, validator=validators.ge(0.0))
    backoff_max: float = field(default=8.0, validator=validators.ge(0.0))
    cooldown: float = field(default=30.0, validator=validators.ge(0.0))
    wait: bool = True
    allow_duplicate_sends: bool = False

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
