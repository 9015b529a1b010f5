"""Per-client options for production traffic, shared by both clients: ``with_options``,
units sized to the rate limit, and outcome hooks on the bulk road."""

from __future__ import annotations

import copy as _copy
from collections.abc import Callable
from typing import Any, Self

import httpx
from attrs import evolve

from ._options import check_rate_limit
from ._plan import BulkPlan
from ._road import OnOutcome
from ._transport import Transport
from .models import Outcome
from .rate import RateLimit
from .retry import RetryPolicy

__all__ = ["TrafficOptions"]


class _Unset:
    """``with_options``: the argument was not given (``None`` means something)."""


_UNSET = _Unset()


class TrafficOptions:
    """Mixed into ``BaseClient``; see its module docstring."""

    _transport: Transport
    _retry: RetryPolicy
    _timeout: httpx.Timeout
    _live_runs: list[Any]
    _closing: bool
    _ensure_open: Callable[[], None]

    def _unit_size(self, largest: int) -> int:
        """Recipients per bulk request: ``largest``, or fewer under a rate limit, so no
        request carries more messages than the limit lets go at once."""
        limit = self._transport.rate_limit
        cap = None if limit is None else limit.max_messages_per_request
        return largest if cap is None else min(largest, cap)

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | _Unset | None = _UNSET,
        retry: RetryPolicy | _Unset | None = _UNSET,
        rate_limit: RateLimit | _Unset | None = _UNSET,
    ) -> Self:
        """This client with other per-attempt timeouts, retry policy or rate limit, over the
        same connections (as openai-python's ``with_options``): no new pool, the same
        throttle pause, the same hooks. The original owns the connections: closing the
        copy stops only its own streams.

        A new ``rate_limit`` keeps its own count (for a lane of traffic with a limit of its
        own); ``rate_limit=None`` lifts it for the copy."""
        from ._client import check_retry, check_timeout  # _client builds on this module

        self._ensure_open()
        copy = _copy.copy(self)
        copy._live_runs = []
        copy._closing = False
        if not isinstance(timeout, _Unset):
            copy._timeout = check_timeout(timeout)
        if not isinstance(retry, _Unset):
            copy._retry = check_retry(retry)
        limit = (
            self._transport.rate_limit
            if isinstance(rate_limit, _Unset)
            else check_rate_limit(rate_limit)
        )
        copy._transport = self._transport.derive(
            retry=copy._retry, timeout=copy._timeout, rate_limit=limit
        )
        return copy

    def _observed(self, on_outcome: OnOutcome | None) -> OnOutcome | None:
        """The caller's ``on_outcome``, with the hooks told each outcome first."""
        observer = self._transport.observer
        if observer.hooks is None:
            return on_outcome

        def both(outcome: Outcome) -> object:
            observer.outcomes([outcome])
            return None if on_outcome is None else on_outcome(outcome)

        return both

    def _paced(self, plan: BulkPlan[Any]) -> BulkPlan[Any]:
        """``plan`` with units no larger than the rate limit lets go at once."""
        size = self._unit_size(plan.unit_size)
        return plan if size == plan.unit_size else evolve(plan, unit_size=size)
