"""What one public call asks of every request it makes: a deadline, and which lane it uses.

A public method (``send_sms(..., timeout=2)``, a bulk send) sets these once; every HTTP
attempt made on its behalf, in the same task or in the unit tasks a bulk run starts,
reads them. A context variable carries them so the gateway-specific code between the
call and the transport does not have to pass them along: tasks started by a task group
inherit the context of the task that started them, on asyncio and trio alike.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import anyio
from attrs import frozen

from .errors import ValidationError

__all__ = ["CallOptions", "call_options", "check_call_timeout", "current_call"]

# A single send that finds the gateway down gives up within this many seconds unless the
# call says otherwise: short enough for a request handler, long enough for a slow answer
# and a failover. docs/production.md states it.
SINGLE_SEND_TIMEOUT = 5.0


@frozen
class CallOptions:
    """``deadline``: the ``anyio.current_time()`` after which no attempt starts and none
    runs on (``inf``: none). ``single``: the call sends one message, and uses the
    capacity kept for single sends."""

    deadline: float = math.inf
    single: bool = False

    def remaining(self) -> float:
        if self.deadline == math.inf:  # no deadline: no clock to read (several per request)
            return math.inf
        return self.deadline - anyio.current_time()


_NO_OPTIONS = CallOptions()
_current: contextvars.ContextVar[CallOptions] = contextvars.ContextVar(
    "messaging_async_call", default=_NO_OPTIONS
)


def current_call() -> CallOptions:
    return _current.get()


def check_call_timeout(value: object) -> float | None:
    """A per-call ``timeout``: positive finite seconds, or ``None``."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValidationError(
            "timeout must be a positive, finite number of seconds (or None)", field="timeout"
        )
    return float(value)


@contextlib.contextmanager
def call_options(timeout: float | None, *, single: bool = False) -> Iterator[CallOptions]:
    """Apply ``timeout`` (seconds for the whole call, failover and retries included) and the
    lane to every request made inside. A nested call keeps the earlier deadline."""
    outer = _current.get()
    deadline = outer.deadline
    if timeout is not None:
        deadline = min(deadline, anyio.current_time() + timeout)
    options = CallOptions(deadline=deadline, single=single or outer.single)
    token = _current.set(options)
    try:
        yield options
    finally:
        _current.reset(token)
