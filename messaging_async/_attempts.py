"""What one HTTP attempt amounts to: the answer, or what the transport's loop does next.

Pure classification, apart from noting on the request's ``SendProgress`` whether it may
have reached the gateway.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from attrs import define, field, frozen

from ._call import CallOptions
from ._exchange import Reply
from ._observe import host_of
from .errors import OutcomeUnknownError, UnreachableError

__all__ = ["Answer", "Attempt", "NextHost", "RoundOver", "SendProgress", "give_up", "judge"]

_AMBIGUOUS_STATUSES = frozenset({408, 500, 502, 503, 504})
_THROTTLED = 429
_UNAVAILABLE = 503


@frozen
class Answer:
    """An HTTP answer the gateway gave: status, body, and the base URL that gave it."""

    status: int
    body: bytes
    base_url: str
    text: str = field(init=False, repr=False)
    """The body as text, decoded once; PHP gateways often start it with a byte-order mark."""

    @text.default
    def _decode(self) -> str:
        return self.body.decode("utf-8", "replace").lstrip("\ufeff")


@frozen
class RoundOver:
    """This round of attempts ended; ``pause`` is what the gateway asked for, if anything;
    ``throttled``: the HTTP status that said the request was not processed (429, 503);
    ``reason``: the failure kind hooks are told."""

    pause: float | None
    throttled: int | None = None
    reason: str = "other"


@frozen
class NextHost:
    """Nothing was sent: try the next base URL at once."""

    reason: str


@define
class SendProgress:
    """Tells a caller that was cancelled whether its request may have left.

    ``in_flight`` is true while httpx holds the request; ``ambiguous`` once any attempt
    ended in a way that may have reached the gateway; ``answered`` once an answer came back
    (so whatever fails after, parsing included, cannot mean "never sent"). ``recipients``:
    how many messages the request carries (for the rate limit and the hooks; 0 for a
    look-up).
    """

    in_flight: bool = False
    ambiguous: bool = False
    answered: bool = False
    recipients: int = 0

    @property
    def may_have_left(self) -> bool:
        return self.in_flight or self.ambiguous or self.answered


@frozen
class Attempt:
    """What every attempt of one ``post`` sends, and the call it is made for."""

    path: str
    content: bytes = field(repr=False)
    content_type: str
    redact: Callable[[str], str] = field(repr=False)
    messages: int
    call: CallOptions


def judge(
    base_url: str, reply: Reply, progress: SendProgress, notes: list[str]
) -> Answer | RoundOver:
    """What an HTTP answer means for the request: a throttle (429, or 503 with a
    ``Retry-After``: not processed), a page in place of an answer (may have been
    processed), or the answer the caller reads."""
    status = reply.status
    retry_after = retry_after_seconds(reply)
    if status == _THROTTLED or (status == _UNAVAILABLE and retry_after is not None):
        notes.append(f"{host_of(base_url)}: HTTP {status}, throttled: not processed")
        return RoundOver(pause=retry_after, throttled=status, reason=f"http_{status}")
    if status in _AMBIGUOUS_STATUSES or status >= 500:
        progress.ambiguous = True
        notes.append(f"{host_of(base_url)}: HTTP {status} in place of an answer")
        return RoundOver(pause=retry_after, reason=f"http_{status}")
    progress.answered = True  # the caller reads it: a failure from here on is "unknown"
    return Answer(status=status, body=reply.body, base_url=base_url)


def retry_after_seconds(reply: Reply) -> float | None:
    """``Retry-After`` as seconds (either form the header allows), or ``None``."""
    value = (reply.retry_after or "").strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def give_up(notes: list[str], progress: SendProgress, last_answer: Answer | None) -> Answer:
    """The last answer, if the last attempt gave one, for the caller to judge; else raise
    what the attempts amount to."""
    if last_answer is not None:
        return last_answer
    if not notes:
        notes.append("not sent: the call's timeout passed before the first attempt")
    summary = f"no usable answer after {len(notes)} attempt(s); last: {notes[-1]}"
    if progress.ambiguous:
        raise OutcomeUnknownError(
            "the request may have reached the gateway: " + summary, attempts=tuple(notes)
        )
    raise UnreachableError(
        "the request never reached the gateway: " + summary, attempts=tuple(notes)
    )
