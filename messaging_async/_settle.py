"""How a unit's send ended, as its recipients' outcomes: the one place that decides
``not_sent`` against ``unknown`` (for bulk runs and single sends alike), and the outcomes of
units and items that were never sent (a fatal answer before them, input that failed
validation)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ._plan import Pending, UnitResult
from ._transport import SendProgress
from .errors import GatewayError, OutcomeUnknownError, UnreachableError
from .models import Outcome, OutcomeStatus

__all__ = ["all_outcomes", "interrupted", "invalid_outcome", "settle_unit", "stop_reason"]

logger = logging.getLogger("messaging_async.bulk")  # the bulk engine's logger, as in _fanout

M = TypeVar("M")


async def settle_unit(
    send_unit: Callable[[list[Pending[M]], SendProgress], Awaitable[UnitResult]],
    unit: list[Pending[M]],
    progress: SendProgress,
) -> UnitResult:
    """Send ``unit`` and turn however that ended into its outcomes: the one place, for bulk
    runs and single sends alike, that decides ``not_sent`` against ``unknown``.

    Any failure once the request may have left (an answer whose parsing raised included)
    is ``unknown``, never ``not_sent``.
    """
    try:
        return await send_unit(unit, progress)
    except UnreachableError as exc:
        return UnitResult(all_outcomes(unit, OutcomeStatus.NOT_SENT, str(exc)))
    except OutcomeUnknownError as exc:
        return UnitResult(all_outcomes(unit, OutcomeStatus.UNKNOWN, str(exc)))
    except Exception as exc:  # e.g. an answer no parser foresaw (RecursionError, ValueError)
        logger.warning("sending a unit of %d raised %s", len(unit), type(exc).__name__)
        logger.debug("the unit's exception", exc_info=True)
        return UnitResult(interrupted(unit, progress, exc))


def interrupted(
    unit: list[Pending[Any]], progress: SendProgress, exc: BaseException
) -> list[Outcome]:
    """Outcomes for a unit whose send did not end normally: ``unknown`` if it may have left."""
    cause = f"SDK error {type(exc).__name__}" if isinstance(exc, Exception) else "cancelled"
    if progress.may_have_left:
        return all_outcomes(unit, OutcomeStatus.UNKNOWN, f"{cause} after the request may have left")
    return all_outcomes(unit, OutcomeStatus.NOT_SENT, f"{cause} before the request left")


def stop_reason(stop: GatewayError) -> str:
    return f"not sent: stopped at an earlier fatal answer ({stop})"


def all_outcomes(unit: list[Pending[Any]], status: OutcomeStatus, reason: str) -> list[Outcome]:
    return [pending.outcome(status, reason) for pending in unit]


def invalid_outcome(index: int, item: object, reason: str) -> Outcome:
    """A ``rejected`` outcome for input that failed validation: nothing was sent."""
    try:  # the item is bad: even reading its fields may raise
        to, ref = getattr(item, "to", ""), getattr(item, "ref", None)
    except Exception:
        to, ref = "", None
    return Outcome(
        to=to if isinstance(to, str) else "",
        status=OutcomeStatus.REJECTED,
        index=index,
        ref=ref,
        reason=reason,
    )
