"""De-duplication of callbacks: a key is new, in progress, or done.

A gateway retries a callback that got no 2xx answer, and may retry while the first
delivery is still being handled. A store that only knows "seen" cannot tell "handled" from
"being handled": a retry arriving while the first handler runs would be acknowledged and
dropped, and if that handler then failed (or was cancelled by a shutdown) the event was
lost. So a claim has three answers, and the receiver settles every claim it wins:

- ``claim(key)`` → ``Claim.NEW`` (the caller now holds it), ``Claim.IN_PROGRESS`` (someone
  else holds it: the receiver answers 503, and the gateway tries again later) or
  ``Claim.DONE`` (handled before: acknowledged, not handled again);
- ``complete(key)`` once the handler returned: later claims answer ``DONE``;
- ``release(key)`` when the handler raised, timed out or was cancelled: the key is
  forgotten, so the gateway's retry is handled.

With Redis: ``SET key in_progress NX EX <a little over handler_timeout>``, then ``GET`` when
it was not set; ``complete`` is ``SET key done EX <a day>``; ``release`` is ``DEL key``.
The expiry on the in-progress value frees a claim whose process died mid-handler.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol

from ..errors import ValidationError
from .events import DeliveryReport, WhatsAppInbound

if TYPE_CHECKING:
    from ._routes import Event

MAX_KEY = 200  # characters; a longer de-duplication key is hashed

__all__ = [
    "Claim",
    "Deduplicator",
    "MemoryDeduplicator",
    "checked_dedupe",
    "dedupe_key",
    "digest_of",
]


class Claim(enum.StrEnum):
    """What ``Deduplicator.claim`` found (a store may answer with the plain strings)."""

    NEW = "new"
    """Never seen, or released: the caller now holds the claim and must settle it."""
    IN_PROGRESS = "in_progress"
    """Claimed by a handler that has not finished: not handled, not acknowledged."""
    DONE = "done"
    """Handled already: acknowledged as a duplicate."""


class Deduplicator(Protocol):
    """A store of callback keys (see the module docstring). Any method may be async."""

    def claim(self, key: str) -> Claim | str | Awaitable[Claim | str]: ...

    def complete(self, key: str) -> Awaitable[None] | None: ...

    def release(self, key: str) -> Awaitable[None] | None: ...


def digest_of(key: str) -> bytes:
    """A 16-byte BLAKE2b digest: every key costs the same memory, whatever its length."""
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class MemoryDeduplicator:
    """The last ``max_keys`` handled callbacks of this process, plus those being handled.

    Keys are kept as 16-byte digests, so memory is bounded by ``max_keys`` (about 150 bytes
    each) however long the keys are. Claims in progress are never evicted: they are bounded
    by the requests running. One worker only: use a shared store (Redis, a database table)
    behind the same three methods when you run several.
    """

    def __init__(self, max_keys: int = 100_000):
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ValidationError("max_keys must be a positive integer", field="max_keys")
        self._done: OrderedDict[bytes, None] = OrderedDict()
        self._in_progress: set[bytes] = set()
        self._max_keys = max_keys

    def __len__(self) -> int:
        return len(self._done) + len(self._in_progress)

    def claim(self, key: str) -> Claim:
        digest = digest_of(key)
        if digest in self._in_progress:
            return Claim.IN_PROGRESS
        if digest in self._done:
            self._done.move_to_end(digest)
            return Claim.DONE
        self._in_progress.add(digest)
        return Claim.NEW

    def complete(self, key: str) -> None:
        digest = digest_of(key)
        self._in_progress.discard(digest)
        self._done[digest] = None
        self._done.move_to_end(digest)
        while len(self._done) > self._max_keys:
            self._done.popitem(last=False)

    def release(self, key: str) -> None:
        digest = digest_of(key)
        self._in_progress.discard(digest)
        self._done.pop(digest, None)


def checked_dedupe(dedupe: object) -> Deduplicator | None:
    """``dedupe=`` as the receiver takes it: ``None``, or an object with the three calls."""
    if dedupe is None:
        return None
    missing = [
        name
        for name in ("claim", "complete", "release")
        if not callable(getattr(dedupe, name, None))
    ]
    if missing:
        raise ValidationError(
            "dedupe must have claim(key) -> Claim, complete(key) and release(key) "
            f"(see messaging_async.webhooks.Deduplicator); missing: {', '.join(missing)}",
            field="dedupe",
        )
    return dedupe  # type: ignore[return-value]


def dedupe_key(kind: str, event: Event) -> str:
    """The event's identity; a long one hashed, so a store never holds a 64 KiB key."""
    if isinstance(event, DeliveryReport):
        key = f"{event.gateway}-delivery:{event.message_id}:{event.status_code}"
    elif isinstance(event, WhatsAppInbound) and event.message_id:
        key = f"whatsapp:{event.message_id}"
    else:
        raw = json.dumps(event.raw, sort_keys=True, default=str).encode()
        return f"{kind}:{hashlib.sha256(raw).hexdigest()}"
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{kind}:{digest}"
