"""``BulkStream``: what every ``stream_*_bulk`` method returns.

A bare async generator is closed only when the caller remembers ``aclose()``: a consumer
that breaks out of ``async for`` leaves it to the garbage collector, which trio reports
(a ``ResourceWarning``) and asyncio finalises in whatever task happens to run next. Wrapping
the generator in an async context manager gives callers the ``async with`` form that closes
it at a known point (cancelling the producer, waiting for it to account for what it had in
flight) while plain ``async for`` keeps working unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import Self

from .models import Outcome

__all__ = ["BulkStream"]


class BulkStream(AsyncIterator[Outcome]):
    """Outcomes as a bulk call's requests finish; use it as ``async with … as stream``.

    ``async for outcome in stream`` reads the outcomes; leaving the ``async with`` block
    (after a ``break``, an exception or the end) closes the stream: the call stops sending
    and every outcome of what was already out has been reported to ``on_outcome``.
    Without ``async with``, iterate it to the end or ``await stream.aclose()``.
    """

    __slots__ = ("_outcomes",)

    def __init__(self, outcomes: AsyncGenerator[Outcome, None]) -> None:
        self._outcomes = outcomes

    def __aiter__(self) -> AsyncIterator[Outcome]:
        # The generator itself, not self: ``async for`` then costs no extra call per outcome.
        return self._outcomes

    async def __anext__(self) -> Outcome:
        return await self._outcomes.__anext__()

    async def aclose(self) -> None:
        """Stop the call: nothing more is sent; returns once what was out is accounted for."""
        await self._outcomes.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
